"""The face distillation tasks on the shared engine, on a tiny synthetic crop cache whose
teacher targets are written directly (no real teacher needed): loss parts, evaluation against
the constant predictor, verification pairs, checkpoints, a student as inference model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbv1.engine import load_config, train
from mbv1.errors import MBV1Error
from mbv1.faces.losses import soft_cross_entropy
from mbv1.tasks.faces import FaceAttributesTask, FaceEmbeddingsTask, FacesTask
from tests.conftest import synthetic_face_cache

FAST = ["model.alpha=0.25", "model.resolution=32", "train.workers=0", "train.batch_size=8",
        "train.epochs=2", "train.warmup_epochs=0", "run.tensorboard=false"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return synthetic_face_cache(tmp_path_factory.mktemp("faces"))


def _cfg(task, cache, tmp_path, *extra):
    return load_config(task, None, [*FAST, "data.holdout=[dot, cid]", *extra],
                       {"data.path": str(cache.root), "run.project": str(tmp_path)})


def test_data_sources_split_and_targets(cache, tmp_path):
    task = FacesTask(_cfg(FacesTask, cache, tmp_path))
    ds = task.build_datasets()
    assert len(ds.train) == 10 and len(ds.val) == 10
    assert ds.val_split == "held-out sources cid, dot"
    assert ds.info["heads"]["heads"] == ["gender", "expression", "age", "embedding"]
    assert ds.info["prior"]["age"] == pytest.approx(25.0)  # ann (20) and ben (30)
    item = ds.train[0]
    assert item["image"].shape == (3, 32, 32)
    assert item["t_gender"].shape == (2,) and item["t_embedding"].shape == (512,)
    bad = FacesTask(_cfg(FacesTask, cache, tmp_path, "data.holdout=[eve]"))
    with pytest.raises(MBV1Error, match="unknown sources"):
        bad.build_datasets()


def test_losses_of_each_task(cache, tmp_path):
    for cls, parts in ((FaceAttributesTask, {"gender", "expression", "age"}),
                       (FaceEmbeddingsTask, {"embedding"}),
                       (FacesTask, {"gender", "expression", "age", "embedding"})):
        task = cls(_cfg(cls, cache, tmp_path))
        ds = task.build_datasets()
        model = task.build_model(ds.info)
        batch = task.collate([ds.train[i] for i in range(4)])
        out = task.forward_loss(model, batch)
        assert set(out) == {"loss", *parts}
        assert torch.isclose(out["loss"], sum(out[p] for p in parts))
    # The emulation loss with the teacher's probabilities as targets (cross-entropy).
    t = batch["t_expression"]
    assert soft_cross_entropy(t.log(), t) < soft_cross_entropy(torch.zeros_like(t), t)


def test_faces_task_trains_evaluates_and_serves(cache, tmp_path):
    from mbv1.faces.student import FaceModel

    cfg = _cfg(FacesTask, cache, tmp_path, "train.epochs=6", "train.lr=0.01")
    result = train(FacesTask, cfg)
    m = result.metrics
    for k in ("mean_ap", "gender_acc", "gender_acc_const", "expression_top1", "age_mae",
              "age_mae_const", "cosine", "cosine_const"):
        assert k in m, k
    assert m["primary"] == "mean_ap"
    assert m["split"] == "held-out sources cid, dot"
    # Held-out people cid/dot: pairs within each (positives) and between (negatives).
    assert m["positive_pairs"] == 20 and m["pairs"] == 45
    assert "teacher_verif_accuracy" in m and m["teacher_verif_auc"] == 100.0
    best = result.run_dir / "best.pt"
    fm = FaceModel(best)
    assert set(fm.heads) == {"gender", "expression", "age", "embedding"}
    crops = [cache.crop(i) for i in range(3)]
    out = fm.predict(crops)
    assert out["gender"].shape == (3, 2) and out["embedding"].shape == (3, 512)
    np.testing.assert_allclose(out["gender"].sum(1), 1, atol=1e-5)
    # The trained student agrees with the teacher on gender better than chance on its data.
    ev = FacesTask(_cfg(FacesTask, cache, tmp_path))
    from mbv1.engine.evaluate import evaluate_checkpoint

    e = evaluate_checkpoint(FacesTask, best, options={"data.path": str(cache.root)})
    assert e.metrics.values["faces"] == 10
    lines = ev.describe(e.metrics, e.meta)
    assert any("teacher agreement" in ln for ln in lines)
    assert any("verification (student | teacher)" in ln for ln in lines)
    rows = e.paper
    assert rows and rows[0]["table"] == "Table 12" and not rows[0]["comparable"]
    assert any(r["table"] == "Table 14" for r in rows)


def test_embedding_student_of_another_size_uses_a_projection(cache, tmp_path):
    cfg = _cfg(FaceEmbeddingsTask, cache, tmp_path, "train.epochs=30", "train.lr=0.003",
               "data.holdout=[dot]", "distill.embedding_dim=64")
    result = train(FaceEmbeddingsTask, cfg)
    m = result.metrics
    assert m["primary"] == "cosine"
    assert "cosine_const" in m and m["split"] == "held-out sources dot"
    # The 64-d embedding learns FaceNet's 512-d one through the projection: the embedding loss
    # falls (measured 1.97 -> 0.82 in 30 steps; 2.0 is orthogonal unit vectors).
    from mbv1.engine.runs import read_metrics

    rows = read_metrics(result.run_dir / "metrics.csv")
    first, last = float(rows[0]["train_embedding"]), float(rows[-1]["train_embedding"])
    assert last < 0.5 * first, (first, last)
    ck = torch.load(result.run_dir / "best.pt", weights_only=True)
    assert "project.weight" in ck["model"]


def test_celeba_supervised(tmp_path):
    from tests.test_faces import _celeba

    root = _celeba(tmp_path / "celeba", n=12)
    # More rows in the val partition: 8 train, 2 val, 2 test.
    lines = [f"{i + 1:06d}.jpg {0 if i < 8 else 1 if i < 10 else 2}" for i in range(12)]
    (root / "list_eval_partition.txt").write_text("\n".join(lines))
    cfg = load_config(FaceAttributesTask, None, [*FAST, f"data.cache={tmp_path / 'c'}"],
                      {"data.path": str(root), "run.project": str(tmp_path)})
    result = train(FaceAttributesTask, cfg)
    m = result.metrics
    assert m["primary"] == "celeba_mean_ap" and "celeba_mean_acc_const" in m
    assert "CelebA val partition (2 images)" == m["split"]
    # supervised: the 40 attribute logits learn CelebA's labels (no teacher ran)
    assert not list((tmp_path / "c").glob("targets-*.npz"))
    from mbv1.engine.runs import read_metrics

    rows = read_metrics(result.run_dir / "metrics.csv")
    assert float(rows[-1]["train_celeba"]) < float(rows[0]["train_celeba"])


def test_face_student_starts_from_the_face_detector_body(cache, tmp_path, monkeypatch):
    """``model.init=face-ssd`` names the pulled face detector: its α=1 body (and its
    preprocessing and 'same' padding) start the student; lower layers stay frozen."""
    from conftest import require_asset

    from mbv1.checkpoint import load_checkpoint
    from mbv1.detection.face_model import default_checkpoint

    require_asset("face-api")
    if not default_checkpoint().exists():
        pytest.fail(f"{default_checkpoint()} missing: run `mbv1 weights pull`")
    det = load_checkpoint(default_checkpoint())["model"]
    cfg = _cfg(FaceAttributesTask, cache, tmp_path, "model.alpha=1.0", "model.init=face-ssd",
               "model.freeze=conv11", "train.epochs=1")
    result = train(FaceAttributesTask, cfg, tty=False)
    saved = load_checkpoint(result.run_dir / "last.pt")["config"]
    assert saved["model"]["padding"] == "same" and tuple(saved["data"]["mean"]) == (0.5,) * 3
    tuned = result.model.state_dict()
    for k in ("conv0.conv.weight", "conv11.pointwise.conv.weight"):
        assert torch.equal(tuned[f"backbone.{k}"].cpu(), det[f"backbone.{k}"]), k
    assert not torch.equal(tuned["backbone.conv13.pointwise.conv.weight"].cpu(),
                           det["backbone.conv13.pointwise.conv.weight"])


def test_named_init_that_is_not_pulled_says_what_to_do(tmp_path, monkeypatch):
    from mbv1.backbone.pretrained import read_init

    monkeypatch.setenv("MBV1_CACHE", str(tmp_path / "empty"))
    with pytest.raises(MBV1Error, match="mbv1 weights pull"):
        read_init("face-ssd")


@pytest.mark.parametrize("kind,name", [("timm", "test_efficientnet"),
                                       ("torchvision", "mobilenet_v3_small")])
def test_any_timm_or_torchvision_model_as_embedding_teacher(cache, tmp_path, kind, name):
    """``timm:MODEL:PATH`` / ``torchvision:MODEL:PATH``: pooled features of a model whose
    weights are a local file, unit length; a student learns them through the engine."""
    from mbv1.teachers.registry import load_embedding_teacher

    if kind == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
    else:
        import torchvision

        model = torchvision.models.get_model(name, weights=None)
    weights = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), weights)
    teacher = load_embedding_teacher(f"{kind}:{name}:{weights}")
    crops = [cache.crop(i) for i in range(3)]
    emb = teacher(crops)
    assert emb.shape[0] == 3 and emb.shape[1] == teacher.dim > 8
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    model.eval()  # the same features by hand: classifier removed, pooled, L2-normalised
    if kind == "timm":
        model.reset_classifier(0)
        size = model.pretrained_cfg["input_size"][-1]
        mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    else:
        model.classifier = torch.nn.Identity()
        size, mean, std = 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    from mbv1.datasets.images import crop_to_tensor

    with torch.no_grad():
        ref = torch.nn.functional.normalize(
            model(torch.stack([crop_to_tensor(c, size, mean, std) for c in crops])), dim=1)
    np.testing.assert_allclose(emb, ref.numpy(), atol=1e-5)
    if kind == "timm":
        cfg = _cfg(FaceEmbeddingsTask, cache, tmp_path,
                   f"distill.embedding_teacher=timm:{name}:{weights}", "train.epochs=1")
        result = train(FaceEmbeddingsTask, cfg, tty=False)
        assert "cosine" in result.metrics
    with pytest.raises(MBV1Error, match="do not fit"):
        other = tmp_path / "other.pth"
        torch.save({"weight": torch.zeros(1)}, other)
        load_embedding_teacher(f"{kind}:{name}:{other}")
    with pytest.raises(MBV1Error, match="MODEL:PATH"):
        load_embedding_teacher(f"{kind}:{name}")


def test_feature_distillation_from_the_face_detector_body(cache, tmp_path):
    """``distill.feature_teacher=face-ssd``: a small student's projected conv11/conv13 maps
    learn the α=1 face body's (FitNets hints); the hint layers never reach inference."""
    from conftest import require_asset

    from mbv1.faces.feature_teacher import load_feature_teacher
    from mbv1.faces.student import FaceModel

    require_asset("face-api")
    teacher = load_feature_teacher("face-ssd", ["conv11", "conv13"], (0.5,) * 3, (0.5,) * 3)
    assert teacher.channels == {"conv11": 512, "conv13": 1024}
    # the student's normalisation is converted to the teacher's: same maps either way
    other = load_feature_teacher("face-ssd", ["conv13"], (0.0,) * 3, (1.0,) * 3)
    raw = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(other(raw)["conv13"], teacher((raw - 0.5) / 0.5)["conv13"])

    cfg = _cfg(FaceAttributesTask, cache, tmp_path, "distill.feature_teacher=face-ssd",
               "train.epochs=1")
    task = FaceAttributesTask(cfg)
    ds = task.build_datasets()
    model = task.build_model(ds.info).train()
    batch = next(iter(torch.utils.data.DataLoader(ds.train, batch_size=4,
                                                  collate_fn=task.collate)))
    parts = task.forward_loss(model, batch, task.build_teacher())
    assert parts["features"] > 0 and set(parts) >= {"gender", "expression", "age", "features"}
    parts["loss"].backward()
    assert model.hints["conv13"].weight.grad.abs().sum() > 0
    result = train(FaceAttributesTask, cfg, tty=False)
    fm = FaceModel(result.run_dir / "last.pt")  # rebuilds the hint layers, loads, runs
    out = fm.predict([cache.crop(0)])
    assert set(out) == {"gender", "expression", "age"}
