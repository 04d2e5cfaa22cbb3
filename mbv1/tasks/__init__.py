"""One module per paper experiment (the only package that knows both the domain packages and
the engine), and the registry of the tasks ``mbv1 train TASK`` knows."""

from __future__ import annotations

# The tasks `mbv1 train TASK` knows: CLI name (kebab-case) -> "module:Task subclass". A plain
# dict; each task adds one line. Classes are imported on first use (get_task), so `mbv1 --help`
# never imports torch and a task that fails to import breaks only itself.
TASKS: dict[str, str] = {
    "classification": "mbv1.tasks.classification:ClassificationTask",
    "fine-grained": "mbv1.tasks.classification:FineGrainedTask",
    "detection": "mbv1.tasks.detection:DetectionTask",
    "geolocation": "mbv1.tasks.geolocation:GeolocationTask",
    "face-attributes": "mbv1.tasks.faces:FaceAttributesTask",
    "face-embeddings": "mbv1.tasks.faces:FaceEmbeddingsTask",
    "faces": "mbv1.tasks.faces:FacesTask",
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


def cost_rows() -> list:
    """Paper-vs-mbv1 cost rows that the tasks declare (``Task.cost_rows``: SSD, PlaNet...), for
    ``mbv1 profile``; tasks sharing one declaration give it once."""
    rows: list = []
    seen = set()
    for name in TASKS:
        fn = get_task(name).cost_rows
        key = getattr(fn, "__func__", fn)
        if key not in seen:
            seen.add(key)
            rows += fn()
    return rows
