"""The face pipeline's parts without real assets: alignment, tracking, the crop cache, pairs,
metrics, CelebA's lists, the student and its losses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mbv1.errors import MBV1Error
from mbv1.faces import align
from mbv1.faces import metrics as M
from mbv1.faces.cache import CropCache, FaceRecord, extract_faces
from mbv1.faces.pairs import lfw_image, pairs_from_records, read_lfw_pairs
from mbv1.faces.pipeline import Face, Tracker, box_iou

# ----------------------------------------------------------------------------- alignment


def test_similarity_transform_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = s * src @ r.T + t
    m = align.similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
    # A mirrored target is fitted by the best rotation, never by a reflection.
    mirrored = src * [-1, 1]
    m2 = align.similarity_transform(src, mirrored)
    assert np.linalg.det(m2[:, :2]) > 0
    with pytest.raises(MBV1Error, match="coincide"):
        align.similarity_transform(np.ones((5, 2)), dst)


def test_aligned_crop_puts_the_landmarks_on_the_template():
    t = align.template(160, 32)
    np.testing.assert_allclose(t, align.ARCFACE_112 * 128 / 112 + 16)
    # Landmarks = the template moved by a rotation/scale/shift in a 400x300 frame.
    a, s = -0.2, 1.9
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lm = s * t @ r.T + [100, 40]
    frame = np.zeros((300, 400, 3), np.uint8)
    crop, m, method = align.crop(frame, (0, 0, 10, 10), lm, "aligned")
    assert method == "aligned" and crop.shape == (160, 160, 3)
    mapped = lm @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(mapped, t, atol=1e-6)
    # No landmarks: the box fallback.
    _, _, method = align.crop(frame, (10, 10, 90, 110), None, "aligned")
    assert method == "box"
    with pytest.raises(MBV1Error, match="crop policy"):
        align.crop(frame, (0, 0, 1, 1), None, "tight")


def test_box_crop_has_facenet_pytorch_margin():
    m = align.box_affine((100, 50, 200, 250), 160, 32)  # the box fills the central 128 px
    corners = np.array([[100, 50], [200, 250]]) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(corners, [[16, 16], [144, 144]])
    frame = np.full((300, 300, 3), 200, np.uint8)
    crop, _, method = align.crop(frame, (250, 250, 350, 350), None, "box")
    assert method == "box" and crop[-1, -1].sum() == 0  # outside the frame: black


def test_box_iou_and_tracker():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    iou = box_iou(a, np.array([[0, 0, 10, 5]]))
    np.testing.assert_allclose(iou[:, 0], [0.5, 0.0])
    tr = Tracker(0.3)
    assert tr.update(a) == [0, 1]
    assert tr.update(a[::-1] + 1) == [1, 0]  # order swapped: ids follow the boxes
    assert tr.update(np.array([[100, 100, 110, 110]])) == [2]  # nothing overlaps: a new track
    assert tr.update(np.zeros((0, 4))) == []


# ----------------------------------------------------------------------------- crop cache


class StubFinder:
    """A FaceFinder stand-in: one face per bright square of the frame (top-left 40x40 bright
    region → face), so the cache logic is tested without a detector."""

    def __init__(self, faces_per_frame=None):
        self.calls = 0

    def describe(self) -> dict:
        return {"detector": "stub", "policy": "box", "size": 32, "margin": 0}

    def __call__(self, rgb):
        self.calls += 1
        out = []
        for k, x0 in enumerate((0, 60)):
            if rgb[5, x0 + 5].sum() > 300:
                box = np.array([x0, 0, x0 + 40, 40], np.float32)
                crop = np.ascontiguousarray(rgb[0:32, x0:x0 + 32])
                out.append(Face(box, 0.9 - 0.1 * k, None, crop, "box", np.eye(2, 3),
                                attr_crop=rgb[0:40, x0:x0 + 40], attr_box=(x0, 0, 40, 40)))
        return out


def _frame(faces: int, shade: int = 0) -> np.ndarray:
    img = np.zeros((60, 120, 3), np.uint8)
    for x0 in (0, 60)[:faces]:
        img[0:40, x0:x0 + 40] = 200 - shade
    return img


@pytest.fixture
def photo_tree(tmp_path):
    """people/alice/{1,2}.png (one face each), people/bob/1.png (two faces), people/group.png
    (two faces, loose photo) and a 6-frame video with one face throughout."""
    import cv2
    from PIL import Image

    root = tmp_path / "people"
    for person, files in (("alice", {"1.png": 1, "2.png": 1}), ("bob", {"1.png": 2})):
        (root / person).mkdir(parents=True)
        for f, n in files.items():
            Image.fromarray(_frame(n)).save(root / person / f)
    Image.fromarray(_frame(2, 10)).save(root / "group.png")
    w = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 60))
    for _ in range(6):
        w.write(_frame(1))
    w.release()
    return root


def test_extract_faces_identities_groups_and_rerun(tmp_path, photo_tree):
    from mbv1.faces.sources import source_specs

    specs = source_specs(str(photo_tree))
    assert [s["source"].split("/")[-1] for s in specs] == ["alice", "bob", "clip.avi", "group.png"]
    finder = StubFinder()
    cache = extract_faces(specs, tmp_path / "cache", finder, vid_stride=2)
    ids = [(r.source.split("/")[-1], r.identity, r.group.split("/")[-1]) for r in cache.records]
    assert ids == [("alice", "alice", "alice"), ("alice", "alice", "alice"),
                   ("bob", "bob", "bob"), ("bob", None, "bob"),  # only the largest face is bob
                   ("clip.avi", "clip.avi#t0", "clip.avi"), ("clip.avi", "clip.avi#t0", "clip.avi"),
                   ("clip.avi", "clip.avi#t0", "clip.avi"),  # frames 0, 2, 4: one track
                   ("group.png", "group.png#f0", "people"), ("group.png", "group.png#f1", "people")]
    assert [r.frame for r in cache.records if "clip" in r.source] == [0, 2, 4]
    assert cache.crop(0).shape == (32, 32, 3) and cache.attr_crop(0).shape == (40, 40, 3)
    # Rerun: nothing extracted again; other settings are refused.
    calls = finder.calls
    again = extract_faces(specs, tmp_path / "cache", finder, vid_stride=2)
    assert finder.calls == calls and len(again) == len(cache)

    class Other(StubFinder):
        def describe(self):
            return {**super().describe(), "policy": "aligned"}

    with pytest.raises(MBV1Error, match="other settings"):
        extract_faces(specs, tmp_path / "cache", Other())
    # A source asked for with another stride is extracted again, without duplicates.
    redo = extract_faces(specs, tmp_path / "cache", finder, vid_stride=3)
    assert sum("clip" in r.source for r in redo.records) == 2  # frames 0, 3
    assert len({r.id for r in redo.records}) == len(redo)
    with pytest.raises(MBV1Error, match="not a face crop cache"):
        CropCache(tmp_path)


def test_pairs_from_identities():
    def rec(i, ident, group, file, frame=0):
        return FaceRecord(str(i), "s", file, frame, None, 0, [0, 0, 1, 1], 1.0, None, "box", None,
                          ident, group)

    records = [rec(0, "v#t0", "v", "v", 0), rec(1, "v#t0", "v", "v", 5),  # one track: positive
               rec(2, "v#t1", "v", "v", 5),  # same frame as 1: negative with 1; unknown with 0
               rec(3, "a.jpg#f0", "album", "a.jpg"), rec(4, "a.jpg#f1", "album", "a.jpg"),
               rec(5, "b.jpg#f0", "album", "b.jpg"),  # other photo of the album: unknown
               rec(6, None, "album", "b.jpg")]  # no identity: never paired
    pairs, same = pairs_from_records(records)
    got = {tuple(p): bool(s) for p, s in zip(pairs.tolist(), same)}
    assert got[(0, 1)] is True and got[(1, 2)] is False and (0, 2) not in got
    assert got[(3, 4)] is False and (3, 5) not in got and (4, 5) not in got
    assert got[(0, 3)] is False  # different groups
    assert not any(6 in p for p in got)
    _, s2 = pairs_from_records(records, max_negatives=2)
    assert s2.sum() == 1 and (~s2).sum() == 2


def test_cross_source_positives_are_reported_apart():
    """Two photos of one person (different sources) are the hard positives: reported on their
    own, student beside teacher; two frames of one video are not among them."""
    from mbv1.faces.evaluation import face_metrics

    def rec(i, source, ident, group):
        return FaceRecord(str(i), source, source, i, None, 0, [0, 0, 1, 1], 1.0, None, "box",
                          None, ident, group)

    records = [rec(0, "v.mp4", "v#t0", "v"), rec(1, "v.mp4", "v#t0", "v"),
               rec(2, "a.jpg", "ann", "person-ann"), rec(3, "b.jpg", "ann", "person-ann"),
               rec(4, "c.jpg", "cid", "person-cid"), rec(5, "d.jpg", "dot", "person-dot")]
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8))
    person = [0, 0, 1, 1, 2, 3]
    teacher = centers[person] / np.linalg.norm(centers[person], axis=1, keepdims=True)
    student = teacher.copy()
    student[3] = -student[2]  # the student misses the second photo of ann
    r = {"index": np.arange(6), "embedding": student.astype(np.float32),
         "t_embedding": teacher.astype(np.float32)}
    values, details = face_metrics(r, {"prior": {}}, records)
    assert details["teacher_verification_cross_source"]["positives"] == 1
    assert details["teacher_verification_cross_source"]["auc"] == 100.0
    assert details["verification_cross_source"]["auc"] < 50.0  # farther than every negative
    assert values["positive_pairs"] == 2  # the video pair counts in the overall figures


def test_read_lfw_pairs(tmp_path):
    p = tmp_path / "pairs.txt"
    p.write_text("2 1\nAl 1 2\nAl 1 Bo 3\nCy 2 4\nCy 1 Dee 1\n")
    pairs = read_lfw_pairs(p)
    assert [(x.same, x.fold) for x in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert lfw_image("/lfw", "Al", 2).as_posix() == "/lfw/Al/Al_0002.jpg"
    p.write_text("2 1\nAl 1 2\n")
    with pytest.raises(MBV1Error, match="header promises"):
        read_lfw_pairs(p)
    p.write_text("1 1\nAl 1 x\nAl 1 Bo 2\n")
    with pytest.raises(MBV1Error, match=r"pairs.txt:2"):
        read_lfw_pairs(p)


# ----------------------------------------------------------------------------- metrics


def test_verification_metrics():
    same = np.array([True] * 20 + [False] * 30)
    dist = np.r_[np.linspace(0.2, 0.6, 20), np.linspace(0.9, 1.4, 30)]
    v = M.verification_metrics(dist, same)
    assert v["accuracy"] == 100.0 and v["auc"] == 100.0
    assert 0.6 < v["threshold"] <= 0.9
    assert v["tar_far_1e-3"] is None  # 30 negatives cannot measure a 1e-3 false-accept rate
    roc = v["roc"]  # separable: the curve reaches TAR 100% at FAR 0
    assert roc["far"][0] == 0 and roc["far"][-1] == 100 and roc["tar"][-1] == 100
    assert any(f == 0 and t == 100 for f, t in zip(roc["far"], roc["tar"]))
    assert roc["far"] == sorted(roc["far"]) and roc["tar"] == sorted(roc["tar"])
    # One negative among the positives: its fold misclassifies it.
    dist2 = dist.copy()
    dist2[25] = 0.1
    assert M.verification_metrics(dist2, same)["accuracy"] < 100.0
    # TAR@FAR on 1000 negatives: one negative may pass at 1e-3.
    neg = np.linspace(1.0, 2.0, 1000)
    pos = np.array([0.5, 0.99, 1.001, 1.5])
    tar, thr = M.tar_at_far(np.r_[pos, neg], np.r_[np.ones(4, bool), np.zeros(1000, bool)], 1e-3)
    assert thr == pytest.approx(neg[1]) and tar == 0.75


def test_balanced_accuracy_by_hand():
    truth = np.array([0, 0, 0, 0, 1])
    assert M.balanced_accuracy(np.zeros(5, int), truth) == 0.5  # majority: 80% plain accuracy
    assert M.balanced_accuracy(np.array([0, 0, 0, 1, 1]), truth) == pytest.approx((0.75 + 1) / 2)


def test_attribute_metrics_against_teacher_and_constant():
    rng = np.random.default_rng(0)
    n = 40
    t_gender = np.c_[rng.uniform(0, 1, n)]
    t_gender = np.c_[t_gender, 1 - t_gender]
    t_expr = rng.dirichlet(np.ones(7), n)
    teacher = {"gender": t_gender, "expression": t_expr, "age": rng.uniform(20, 60, n)}
    prior = {"gender": np.array([0.6, 0.4]), "expression": np.full(7, 1 / 7), "age": 40.0}
    v, det = M.attribute_metrics(teacher, teacher, prior)  # a perfect student
    assert v["gender_acc"] == 100 and v["expression_top1"] == 100 and v["age_mae"] == 0
    assert v["gender_bal_acc"] == 100 and v["gender_bal_acc_const"] == 50
    # Gender ranks perfectly; a one-vs-rest expression label (teacher top-1) is not a threshold
    # of its own probability, so even the teacher's scores fall short of 100% AP there.
    assert det["ap"]["male"] == 100.0 and 85 < v["mean_ap"] < 100
    assert v["mean_ap_const"] < 60  # a constant score ranks nothing: AP = positive rate
    assert det["faces"] == n and sum(det["positives"][e] for e in det["positives"] if e != "male") == n


# ----------------------------------------------------------------------------- CelebA


def _celeba(root, n=6, bad=None):
    from PIL import Image

    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"A{k}" for k in range(40)]
    lines = [str(n), " ".join(names)]
    for i in range(n):
        f = f"{i + 1:06d}.jpg"
        Image.fromarray(np.full((218, 178, 3), 20 * i, np.uint8)).save(root / "img_align_celeba" / f)
        vals = ["1" if (i + k) % 3 == 0 else "-1" for k in range(40)]
        lines.append(f + "  " + " ".join(vals))
    if bad:
        lines[bad] = lines[bad].replace("-1", "2", 1)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "\n".join(f"{i + 1:06d}.jpg {0 if i < 4 else 1 if i == 4 else 2}" for i in range(n)))
    (root / "identity_CelebA.txt").write_text(
        "\n".join(f"{i + 1:06d}.jpg {i // 2}" for i in range(n)))
    return root


def test_celeba_reader_on_the_official_format(tmp_path):
    from mbv1.faces.data import CelebAFaces, is_celeba, read_celeba

    root = _celeba(tmp_path / "celeba")
    assert is_celeba(root) and not is_celeba(tmp_path)
    c = read_celeba(root)
    assert len(c.files) == 6 and len(c.names) == 40 and c.attributes.shape == (6, 40)
    assert c.partition.tolist() == [0, 0, 0, 0, 1, 2]
    assert c.identity.tolist() == [0, 0, 1, 1, 2, 2]
    assert c.attributes[0, 0] == 1 and c.attributes[0, 1] == -1
    faces = CelebAFaces(c, tmp_path / "cache", 160)
    assert faces.crop(3).shape == (160, 160, 3) and faces.records[3].identity == "celeba#1"
    bad = _celeba(tmp_path / "bad", bad=4)
    with pytest.raises(MBV1Error, match=r"list_attr_celeba.txt:5"):
        read_celeba(bad)
    (bad / "list_attr_celeba.txt").unlink()
    with pytest.raises(MBV1Error, match="not CelebA"):
        read_celeba(bad)


# ----------------------------------------------------------------------------- student


def test_student_heads_projection_and_losses():
    from mbv1.faces.losses import embedding_loss, soft_cross_entropy
    from mbv1.faces.model import FaceStudent, HeadsConfig

    heads = HeadsConfig(["gender", "expression", "age", "embedding", "celeba"], embedding_dim=64)
    m = FaceStudent(heads, alpha=0.25)  # train mode: BatchNorm on batch statistics
    out = m(torch.randn(3, 3, 64, 64))
    assert out["gender"].shape == (3, 2) and out["expression"].shape == (3, 7)
    assert out["age"].shape == (3,) and out["celeba"].shape == (3, 40)
    assert out["embedding"].shape == (3, 64) and out["embedding_teacher"].shape == (3, 512)
    torch.testing.assert_close(out["embedding"].norm(dim=1), torch.ones(3))
    assert set(m.forward_heads_only(torch.randn(1, 3, 64, 64))) == set(heads.heads)
    # The emulation loss is minimised by the teacher's own distribution.
    p = torch.tensor([[0.7, 0.3]])
    assert soft_cross_entropy(p.log(), p) < soft_cross_entropy(torch.zeros(1, 2), p)
    e = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert embedding_loss(e, e) == 0
    assert embedding_loss(e, -e) == pytest.approx(4.0)
    with pytest.raises(MBV1Error, match="unknown face heads"):
        HeadsConfig(["beard"])


def test_crop_to_tensor_flip_and_resize():
    from mbv1.datasets.images import crop_to_tensor

    crop = np.zeros((160, 160, 3), np.uint8)
    crop[:, :80] = 255
    x = crop_to_tensor(crop, 32, (0.5,) * 3, (0.5,) * 3)
    assert x.shape == (3, 32, 32) and x[0, 0, 0] == 1 and x[0, 0, -1] == -1
    assert crop_to_tensor(crop, 32, (0.5,) * 3, (0.5,) * 3, flip=True)[0, 0, 0] == -1


def test_degrade_is_seeded_and_keeps_the_size():
    from mbv1.faces.data import degrade

    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
    a = degrade(crop, np.random.default_rng(1), 1.0, 0.2)
    b = degrade(crop, np.random.default_rng(1), 1.0, 0.2)
    assert a.shape == crop.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert a.std() < crop.std()  # low resolution smooths the noise away
    assert degrade(crop, rng, 0.0, 0.0) is crop


def test_face_records_roundtrip(tmp_path):
    r = FaceRecord("000001", "s", "f", 3, 0.1, 0, [1, 2, 3, 4], 0.9, None, "box", [1, 2, 2, 2],
                   "f#f0", "g")
    assert FaceRecord(**json.loads(json.dumps(r.__dict__))) == r
    assert r.frame_key == "f@3"
