"""Tests of mbv1.tfjs on a tiny synthetic manifest, plus the real face-api SSD manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mbv1.errors import MBV1Error
from mbv1.tfjs import load_tfjs_weights


def _write(tmp_path, groups, blobs):
    for name, data in blobs.items():
        (tmp_path / name).write_bytes(data)
    m = tmp_path / "tiny-weights_manifest.json"
    m.write_text(json.dumps(groups))
    return m


def _tiny(tmp_path):
    f32 = np.arange(6, dtype="<f4").reshape(2, 3) / 4
    u8 = np.array([0, 1, 255, 128], dtype=np.uint8)
    u16 = np.array([0, 65535, 2], dtype="<u2")
    f16 = np.array([1.5, -2.0, 0.0999], dtype="<f2")
    i32 = np.array([7, -3], dtype="<i4")
    blob = f32.tobytes() + u8.tobytes() + u16.tobytes() + f16.tobytes()
    groups = [
        {
            "paths": ["g0-shard1of2.bin", "g0-shard2of2.bin"],  # split mid-tensor
            "weights": [
                {"name": "a/f32", "shape": [2, 3], "dtype": "float32"},
                {
                    "name": "b/u8",
                    "shape": [2, 2],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.1, "min": -1.0},
                },
                {
                    "name": "c/u16",
                    "shape": [3],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint16", "scale": 0.001, "min": 0.5},
                },
                {
                    "name": "d/f16",
                    "shape": [1, 3],
                    "dtype": "float32",
                    "quantization": {"dtype": "float16"},
                },
            ],
        },
        {
            "paths": ["g1.bin"],
            "weights": [
                {"name": "e/i32", "shape": [2], "dtype": "int32"},
                {
                    "name": "f/q_int",
                    "shape": [],
                    "dtype": "int32",
                    "quantization": {"dtype": "uint8", "scale": 1, "min": 5118},
                },
            ],
        },
    ]
    blobs = {
        "g0-shard1of2.bin": blob[:10],
        "g0-shard2of2.bin": blob[10:],
        "g1.bin": i32.tobytes() + bytes([0]) + b"trailing bytes are ignored",
    }
    return _write(tmp_path, groups, blobs), (f32, u8, u16, f16, i32)


def test_tiny_manifest(tmp_path):
    m, (f32, u8, _u16, f16, i32) = _tiny(tmp_path)
    w = load_tfjs_weights(m)
    assert list(w) == ["a/f32", "b/u8", "c/u16", "d/f16", "e/i32", "f/q_int"]
    np.testing.assert_array_equal(w["a/f32"], f32)
    assert w["a/f32"].dtype == np.float32 and w["a/f32"].flags.writeable
    assert w["b/u8"].shape == (2, 2) and w["b/u8"].dtype == np.float32
    np.testing.assert_array_equal(
        w["b/u8"].ravel(), (u8.astype(np.float64) * 0.1 - 1.0).astype(np.float32)
    )
    np.testing.assert_allclose(w["c/u16"], [0.5, 65.535 + 0.5, 0.502], rtol=1e-6)
    np.testing.assert_array_equal(w["d/f16"], f16.astype(np.float32).reshape(1, 3))
    np.testing.assert_array_equal(w["e/i32"], i32)
    assert w["f/q_int"].shape == () and int(w["f/q_int"]) == 5118


def test_truncated_bin(tmp_path):
    m, _ = _tiny(tmp_path)
    (tmp_path / "g0-shard2of2.bin").write_bytes(b"\0" * 20)  # 30 bytes in all: c/u16 needs 28..34
    with pytest.raises(MBV1Error, match="truncated weights: 'c/u16'") as e:
        load_tfjs_weights(m)
    assert "\n" not in str(e.value)


def test_missing_bin(tmp_path):
    m, _ = _tiny(tmp_path)
    (tmp_path / "g1.bin").unlink()
    with pytest.raises(MBV1Error, match="g1.bin .*does not exist"):
        load_tfjs_weights(m)


def test_missing_or_bad_manifest(tmp_path):
    with pytest.raises(MBV1Error, match="does not exist"):
        load_tfjs_weights(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a manifest"}')
    with pytest.raises(MBV1Error, match="not a tfjs weights manifest"):
        load_tfjs_weights(bad)


@pytest.mark.assets
def test_real_ssd_manifest(face_api_root):
    model = face_api_root / "package" / "model"
    w = load_tfjs_weights(model / "ssd_mobilenetv1_model-weights_manifest.json")
    anchors = w["Output/extra_dim"]
    assert anchors.shape == (1, 5118, 4) and anchors.dtype == np.float32
    # anchors are normalized [ymin, xmin, ymax, xmax]: centres inside the image
    cy = (anchors[0, :, 0] + anchors[0, :, 2]) / 2
    cx = (anchors[0, :, 1] + anchors[0, :, 3]) / 2
    assert cy.min() > 0 and cy.max() < 1 and cx.min() > 0 and cx.max() < 1
    assert w["MobilenetV1/Conv2d_0_pointwise/weights"].shape == (3, 3, 3, 32)  # 3x3 s2 stem
    assert w["MobilenetV1/Conv2d_1_depthwise/depthwise_weights"].shape == (3, 3, 32, 1)
    assert w["Prediction/BoxPredictor_0/ClassPredictor/weights"].shape == (1, 1, 512, 9)
    assert all(np.isfinite(v).all() for v in w.values() if v.dtype == np.float32)
