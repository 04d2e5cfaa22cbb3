"""load_rgb: every image mode to 8-bit RGB, EXIF orientation, bad files named by path."""

import numpy as np
import pytest
from PIL import Image

from mbv1.datasets import augment
from mbv1.datasets.images import is_image_file, load_rgb
from mbv1.errors import MBV1Error


def _save(tmp_path, img, name):
    path = tmp_path / name
    img.save(path)
    return path


@pytest.mark.parametrize("mode,name", [("L", "g.png"), ("1", "b.png"), ("CMYK", "c.jpg"),
                                        ("P", "p.gif"), ("YCbCr", "y.jpg"), ("RGB", "r.webp")])
def test_modes_become_rgb(tmp_path, mode, name):
    img = Image.new(mode, (5, 4))
    out = load_rgb(_save(tmp_path, img, name))
    assert out.mode == "RGB" and out.size == (5, 4)


def test_16_bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    out = np.asarray(load_rgb(_save(tmp_path, Image.fromarray(a), "d.png")))
    assert out[0, :, 0].tolist() == [0, 100, 255] and out.dtype == np.uint8


def test_transparency_composited_on_white(tmp_path):
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent black
    out = np.asarray(load_rgb(_save(tmp_path, Image.fromarray(a, "RGBA"), "t.png")))
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 1].tolist() == [255, 255, 255]
    p = Image.new("P", (2, 2), 0)
    p.putpalette([0, 0, 0, 0, 255, 0])
    p.info["transparency"] = 0
    out = np.asarray(load_rgb(_save(tmp_path, p, "t.gif")))
    assert out[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 3), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "o.jpg"
    img.save(path, exif=exif.tobytes())
    assert load_rgb(path).size == (3, 6)


@pytest.mark.parametrize("content,match", [(b"", "empty file"), (b"not an image", "cannot read"),
                                           (None, "not found")])
def test_bad_files_name_their_path(tmp_path, content, match):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MBV1Error, match=match) as e:
        load_rgb(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    path = _save(tmp_path, Image.fromarray(noise), "x.jpg")
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(MBV1Error, match="x.jpg"):
        load_rgb(path)


def test_extensions():
    assert is_image_file("a/ILSVRC2012_val_00000001.JPEG") and not is_image_file("a/labels.txt")


def test_augmentation_is_a_function_of_its_seed():
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    tf = augment.train_transform(32, "inception", (0.2, 1.0), hflip=True, color_jitter=0.3)
    a, b, c = tf(img, 7), tf(img, 7), tf(img, 8)
    assert a.shape == (32, 32, 3) and (a == b).all() and not (a == c).all()
    ev = augment.eval_transform(32, 0.875)
    assert ev(img).shape == (32, 32, 3) and (ev(img) == ev(img)).all()
    t = augment.to_tensor(np.full((2, 2, 3), 255, np.uint8), (0.5,) * 3, (0.5,) * 3)
    assert t.shape == (3, 2, 2) and float(t.max()) == 1.0
