"""Classification data in real layouts: image folders, ILSVRC (all val label forms), Stanford
Dogs as distributed (.mat lists, VOC boxes), bad images, and the digits writer."""

import numpy as np
import pytest
from PIL import Image

from mbv1.datasets import augment
from mbv1.datasets.classification import ClassificationDataset
from mbv1.datasets.digits import write_digits
from mbv1.datasets.dogs import read_stanford_dogs
from mbv1.datasets.folder import Sample, read_folder_dataset
from mbv1.datasets.synthetic import write_stanford_dogs
from mbv1.errors import MBV1Error


def _img(path, value=0, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def _tree(root, classes, n, ext=".png"):
    for c in classes:
        for i in range(n):
            _img(root / c / f"{c}_{i}{ext}", i)


def test_flat_folder_gets_a_stratified_stable_held_out_split(tmp_path):
    _tree(tmp_path, ["cat", "dog"], 10)
    s = read_folder_dataset(tmp_path, val_split=0.2, split_seed=1)
    assert s.labels == ["cat", "dog"] and len(s.train) == 16 and len(s.val) == 4
    assert sorted(x.label for x in s.val) == [0, 0, 1, 1]
    assert not {x.path for x in s.train} & {x.path for x in s.val}
    again = read_folder_dataset(tmp_path, val_split=0.2, split_seed=1)
    assert [x.path for x in again.val] == [x.path for x in s.val]
    assert "held-out 20%" in s.val_split


def test_train_val_folders_and_label_order(tmp_path):
    _tree(tmp_path / "train", ["n02", "n01"], 2, ".JPEG")
    _tree(tmp_path / "val", ["n01"], 1, ".JPEG")
    s = read_folder_dataset(tmp_path)
    assert s.labels == ["n01", "n02"] and [x.label for x in s.val] == [0]
    _tree(tmp_path / "val", ["n03"], 1)
    with pytest.raises(MBV1Error, match="classes the labels lack: \\['n03'\\]"):
        read_folder_dataset(tmp_path)


@pytest.mark.parametrize("name,text", [
    ("LOC_val_solution.csv", "ImageId,PredictionString\nILSVRC2012_val_00000001,n02 1 2 3 4\n"
                             "ILSVRC2012_val_00000002,n01 5 6 7 8 n01 1 1 2 2\n"),
    ("val_labels.txt", "ILSVRC2012_val_00000001.JPEG n02\nILSVRC2012_val_00000002.JPEG n01\n"),
])
def test_ilsvrc_flat_val_with_a_labels_file(tmp_path, name, text):
    _tree(tmp_path / "train", ["n01", "n02"], 2, ".JPEG")
    for k in (1, 2):
        _img(tmp_path / "val" / f"ILSVRC2012_val_{k:08d}.JPEG")
    (tmp_path / name).write_text(text)
    s = read_folder_dataset(tmp_path)
    assert [(x.path.rsplit("/", 1)[1], x.label) for x in s.val] == [
        ("ILSVRC2012_val_00000001.JPEG", 1), ("ILSVRC2012_val_00000002.JPEG", 0)]
    assert name in s.val_split


def test_ilsvrc_devkit_ground_truth_uses_meta_mat_ids(tmp_path):
    from scipy.io import savemat

    _tree(tmp_path / "train", ["n01", "n02"], 1, ".JPEG")
    for k in (1, 2):
        _img(tmp_path / "val" / f"ILSVRC2012_val_{k:08d}.JPEG")
    # the devkit's IDs are not the sorted-wnid order: ID 1 is n02 here
    syn = np.array([(1, "n02", "dog"), (2, "n01", "cat")],
                   dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O")])
    savemat(str(tmp_path / "meta.mat"), {"synsets": syn})
    (tmp_path / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n")
    s = read_folder_dataset(tmp_path)
    assert [x.label for x in s.val] == [1, 0]


def test_val_label_errors(tmp_path):
    _tree(tmp_path / "train", ["n01"], 2)
    _img(tmp_path / "val" / "a.png")
    with pytest.raises(MBV1Error, match="no labels file"):
        read_folder_dataset(tmp_path)
    (tmp_path / "val_labels.txt").write_text("a.png n09\n")
    with pytest.raises(MBV1Error, match="'n09', which is not a training class"):
        read_folder_dataset(tmp_path)
    (tmp_path / "val_labels.txt").write_text("b.png n01\n")
    with pytest.raises(MBV1Error, match="1 validation images have no label.*a.png"):
        read_folder_dataset(tmp_path)


def test_empty_folders_are_one_line_errors(tmp_path):
    with pytest.raises(MBV1Error, match="no class folders"):
        read_folder_dataset(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(MBV1Error, match="no images"):
        read_folder_dataset(tmp_path)
    _tree(tmp_path, ["dog"], 3)
    with pytest.raises(MBV1Error, match=r"without images: \['cat'\]"):
        read_folder_dataset(tmp_path)


def test_stanford_dogs_official_layout(tmp_path):
    root = write_stanford_dogs(tmp_path / "dogs", train_per_class=3, test_per_class=2)
    s = read_stanford_dogs(root)
    assert s.labels == ["Chihuahua", "Japanese_spaniel", "Maltese_dog", "Pekinese"]
    assert len(s.train) == 12 and len(s.val) == 8 and s.layout == "stanford-dogs"
    assert all(x.box is None for x in s.train)
    assert all(f"/{['n02085620', 'n02085782', 'n02085936', 'n02086079'][x.label]}-" in x.path
               for x in s.train + s.val)
    boxed = read_stanford_dogs(root, crop_to_box=True)
    x0, y0, x1, y1 = boxed.train[0].box
    assert x1 - x0 == 32 and y1 - y0 == 24  # the synthetic dog is half the 64x48 image
    ds = ClassificationDataset(boxed.train, augment.eval_transform(16, 1.0), (0.5,) * 3, (0.5,) * 3)
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and item["label"] == 0
    # the crop holds only the dog's flat colour
    assert float(item["image"].std(dim=(1, 2)).max()) < 0.05


def test_stanford_dogs_lists_that_disagree_are_refused(tmp_path):
    from scipy.io import loadmat, savemat

    root = write_stanford_dogs(tmp_path / "dogs", train_per_class=2, test_per_class=1)
    mat = loadmat(str(root / "lists" / "test_list.mat"))
    mat["labels"][0, 0] = 2.0  # a Chihuahua labelled as class 2
    savemat(str(root / "lists" / "test_list.mat"),
            {k: mat[k] for k in ("file_list", "annotation_list", "labels")})
    with pytest.raises(MBV1Error, match="lists disagree: label 2"):
        read_stanford_dogs(root)
    write_stanford_dogs(tmp_path / "d2", train_per_class=2, test_per_class=1)
    next((tmp_path / "d2" / "Images").rglob("*.jpg")).unlink()
    with pytest.raises(MBV1Error, match="1 images in the lists are missing"):
        read_stanford_dogs(tmp_path / "d2")


def test_bad_image_skipped_with_its_path_or_fatal(tmp_path, capfd):
    good = _img(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    samples = [Sample(str(good), 0), Sample(str(bad), 1)]
    tf = augment.eval_transform(8, 1.0)
    ds = ClassificationDataset(samples, tf, (0.5,) * 3, (0.5,) * 3, on_bad_image="skip")
    assert ds[0]["label"] == 0 and ds[1] is None
    assert f"skipping cannot read image {bad}" in capfd.readouterr().err
    ds = ClassificationDataset(samples, tf, (0.5,) * 3, (0.5,) * 3, on_bad_image="fail")
    with pytest.raises(MBV1Error, match="bad.png.*on_bad_image=fail"):
        ds[1]


def test_digits_writer(tmp_path):
    s = write_digits(tmp_path / "d", size=16, per_class=5)
    assert s["train"] == 40 and s["val"] == 10
    folder = read_folder_dataset(tmp_path / "d")
    assert folder.labels == [str(d) for d in range(10)] and len(folder.val) == 10
    img = Image.open(folder.train[0].path)
    assert img.size == (16, 16) and img.mode == "L"
    with pytest.raises(MBV1Error, match="not empty"):
        write_digits(tmp_path / "d")
