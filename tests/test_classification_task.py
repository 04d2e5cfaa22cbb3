"""Fine-grained recognition on a synthetic Stanford Dogs tree in the official layout: train,
evaluate beside Table 10, report, classify; and converted peer weights evaluate with their own
preprocessing."""

import pytest
import torch

from mbv1.checkpoint import load_checkpoint
from mbv1.classification import Classifier
from mbv1.cli.results import print_evaluation
from mbv1.datasets.folder import expand_sources
from mbv1.datasets.synthetic import write_stanford_dogs
from mbv1.engine import load_config, train
from mbv1.engine.evaluate import evaluate_checkpoint
from mbv1.engine.report import report_rows, to_markdown
from mbv1.errors import MBV1Error
from mbv1.tasks import get_task

FineGrained = get_task("fine-grained")



@pytest.fixture(scope="module")
def dogs_run(tmp_path_factory):
    """One epoch of the Table 10 setting 0.75 MobileNet-192 on 4 synthetic breeds."""
    root = tmp_path_factory.mktemp("dogs")
    data = write_stanford_dogs(root / "dogs", train_per_class=4, test_per_class=2)
    cfg = load_config(FineGrained, None,
                      ["model.alpha=0.75", "model.resolution=192", "train.batch_size=8",
                       "train.workers=0", "train.optimizer=sgd", "train.lr=0.01",
                       "data.crop_to_box=true", "run.tensorboard=false",
                       f"run.project={root / 'runs'}", "run.recipe=test recipe"],
                      {"data.path": str(data), "train.epochs": 1})
    result = train(FineGrained, cfg, tty=False)
    return data, result


def test_fine_grained_eval_beside_table_10(dogs_run, capsys):
    data, result = dogs_run
    assert load_checkpoint(result.run_dir / "best.pt")["meta"]["layout"] == "stanford-dogs"
    ev = evaluate_checkpoint(FineGrained, result.run_dir, options={"data.path": str(data),
                                                                    "train.workers": 0})
    assert ev.metrics.split.startswith("Stanford Dogs test_list.mat (8 images, cropped")
    assert ev.metrics.values["images"] == 8 and 0 <= ev.metrics.value <= 100
    assert [r["model"] for r in ev.paper] == ["0.75 MobileNet-192"]
    assert ev.paper[0]["value"] == 80.5 and ev.paper[0]["comparable"] is False  # 4 breeds, not 120
    print_evaluation(ev)
    out = capsys.readouterr().out
    assert "Table 10" in out and "0.75 MobileNet-192" in out and "80.5%" in out
    assert "Stanford Dogs" in out and "n/a" in out and "other data" in out
    assert "Chihuahua" in out  # per-class accuracy names the breeds


def test_report_lists_the_paper_row_and_costs(dogs_run):
    _, result = dogs_run
    rows = report_rows([result.run_dir])
    assert len(rows) == 1
    r = rows[0]
    assert r.task == "fine-grained" and r.setting == "α=0.75, 192 px" and r.recipe == "test recipe"
    assert r.paper == 80.5 and r.diff is None and r.params_paper_m == 1.9
    assert r.mult_adds_paper_m == 239 and 230 < r.mult_adds_m < 240  # α=0.75 at 192, 4 classes
    md = to_markdown(rows)
    assert "Table 10 0.75 MobileNet-192" in md and "n/a (other data)" in md


def test_classifier_api_names_breeds_and_reports_bad_files(dogs_run, tmp_path):
    data, result = dogs_run
    paths = expand_sources([str(data / "Images" / "n02086079-Pekinese"),
                            str(data / "Images/*/*_1000.jpg")])
    assert len(paths) == 9  # 6 Pekinese + the other 3 breeds' first image (no repeats)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"no")
    preds = list(Classifier(result.run_dir, "cpu").predict([*paths[:2], bad], top_k=10))
    assert [len(p.top) for p in preds[:2]] == [4, 4]  # top-k capped at the 4 breeds
    assert {lab for lab, _, _ in preds[0].top} == {"Chihuahua", "Japanese_spaniel", "Maltese_dog",
                                                    "Pekinese"}
    assert preds[2].error and "bad.jpg" in preds[2].error
    with pytest.raises(MBV1Error, match="image not found"):
        expand_sources([str(tmp_path / "missing.jpg")])


def _timm_file(path):
    """A MobileNetV1 α=0.25 state dict in timm's names (1000 classes), saved to ``path``."""
    from mbv1.backbone import MobileNetV1

    own = MobileNetV1(0.25, num_classes=1000).state_dict()
    timm = {"conv_stem.weight": own["conv0.conv.weight"],
            **{f"bn1.{k}": own[f"conv0.bn.{k}"]
               for k in ("weight", "bias", "running_mean", "running_var")},
            "classifier.weight": own["fc.weight"], "classifier.bias": own["fc.bias"]}
    for i in range(1, 14):
        b = f"blocks.{i}.0"
        timm[f"{b}.conv_dw.weight"] = own[f"conv{i}.depthwise.conv.weight"]
        timm[f"{b}.conv_pw.weight"] = own[f"conv{i}.pointwise.conv.weight"]
        for k in ("weight", "bias", "running_mean", "running_var"):
            timm[f"{b}.bn1.{k}"] = own[f"conv{i}.depthwise.bn.{k}"]
            timm[f"{b}.bn2.{k}"] = own[f"conv{i}.pointwise.bn.{k}"]
    torch.save(timm, path)
    return path


def test_converted_timm_weights_evaluate_with_imagenet_preprocessing(tmp_path):
    """A peer checkpoint (timm layout) becomes an mbv1 one whose meta carries mean/std: eval
    uses them."""
    from mbv1.backbone.peers import IMAGENET_MEAN, convert_file
    from mbv1.engine.evaluate import checkpoint_config

    src = _timm_file(tmp_path / "timm.pth")
    path, _ = convert_file(src, "timm", tmp_path / "m.pt", resolution=96)
    cfg = checkpoint_config(get_task("classification"), load_checkpoint(path))
    assert cfg.data.mean == IMAGENET_MEAN and cfg.model.resolution == 96
    assert cfg.model.bn_eps == 1e-5


def test_paper_rows_and_differences_for_imagenet_settings():
    from mbv1.engine.report import paper_comparison

    cfg = load_config(get_task("classification"), None, ["model.alpha=0.5", "model.resolution=160"])
    rows = get_task("classification")(cfg).paper_rows({"num_classes": 1000})
    assert [(r["table"], r["value"], r["comparable"]) for r in rows] == [("Table 9", 60.2, True)]
    meta = {"paper": rows}
    cmp = paper_comparison(meta, {"primary": "top1", "top1": 61.0})
    assert cmp["diff"] == pytest.approx(0.8) and cmp["params_paper_m"] == 1.32
    shallow = load_config(get_task("classification"), None, ["model.variant=shallow"])
    rows = get_task("classification")(shallow).paper_rows({"num_classes": 1000})
    assert [r["model"] for r in rows] == ["Shallow MobileNet"]
    dogs = load_config(FineGrained, None, ["model.alpha=1.0", "model.resolution=224"])
    rows = FineGrained(dogs).paper_rows({"num_classes": 120})
    assert [(r["table"], r["value"], r["comparable"]) for r in rows] == [("Table 10", 83.3, True)]


def test_finetune_from_a_timm_file_adopts_its_numerics(dogs_run, tmp_path, capsys):
    from mbv1.backbone.peers import IMAGENET_MEAN

    data, _ = dogs_run
    src = _timm_file(tmp_path / "timm.pth")
    cfg = load_config(FineGrained, None,
                      ["model.alpha=0.25", "model.resolution=32", "train.batch_size=8",
                       "train.workers=0", "run.tensorboard=false", f"run.project={tmp_path}",
                       f"model.init={src}", "data.std=[0.5, 0.5, 0.5]"],
                      {"data.path": str(data), "train.epochs": 1})
    result = train(FineGrained, cfg, tty=False)
    out = capsys.readouterr().out
    assert "from timm weights timm.pth" in out and "fc.weight (1000, 256) -> (4, 256)" in out
    assert cfg.model.bn_eps == 1e-5 and cfg.data.mean == IMAGENET_MEAN  # adopted
    assert cfg.data.std == (0.5, 0.5, 0.5) and "data.std=(0.5, 0.5, 0.5) kept" in out  # explicit
    meta = load_checkpoint(result.run_dir / "best.pt")["meta"]
    assert meta["init"].startswith("timm weights") and meta["mean"] == list(IMAGENET_MEAN)
