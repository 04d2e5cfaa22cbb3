"""A bare ``mbv1 train TASK`` runs the best recipe measured for it; the paper's setting is one
``--config`` away. The figures behind each choice are in docs/ (faces: docs/faces.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbv1.engine.config import default_config, load_config
from mbv1.engine.meta import recipe_line
from mbv1.tasks import TASKS, get_task

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# task -> the recipe file its defaults must equal (the best measured recipe)
DEFAULT_RECIPES = {
    "face-attributes": "faces/face-ssd-attributes_1.0_128.yaml",
    "face-embeddings": "faces/face-ssd_1.0_128.yaml",
    "faces": "faces/face-ssd-attributes_1.0_128.yaml",
}


def _values(cfg) -> dict:
    d = cfg.to_dict()
    d["run"].pop("recipe")
    return d


@pytest.mark.parametrize("task", sorted(DEFAULT_RECIPES))
def test_face_task_default_is_its_best_measured_recipe(task):
    cls = get_task(task)
    bare = default_config(cls)
    recipe = load_config(cls, CONFIGS / DEFAULT_RECIPES[task])
    assert _values(bare) == _values(recipe)
    assert bare.model.init == "face-ssd" and bare.model.alpha == 1.0
    # the run says which recipe it used, and where the paper's one is
    line = recipe_line(bare)
    assert "face-ssd body init" in line and "paper_0.25_128.yaml" in line


@pytest.mark.parametrize("task", sorted(DEFAULT_RECIPES))
def test_paper_student_is_one_option_away(task):
    cfg = load_config(get_task(task), CONFIGS / "faces/paper_0.25_128.yaml")
    assert (cfg.model.alpha, cfg.model.resolution, cfg.model.init, cfg.model.freeze) == \
        (0.25, 128, None, None)
    assert recipe_line(cfg).startswith("the paper's student")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_default_config_resolves(task):
    cfg = default_config(get_task(task))
    assert cfg.task == task and recipe_line(cfg)


def test_default_init_gives_way_to_an_asked_width_but_a_chosen_init_does_not():
    from mbv1.engine.finetune import drop_default_init

    cls = get_task("face-attributes")
    cfg = load_config(cls, options={"model.alpha": 0.25})
    note = drop_default_init(cfg)
    assert note and "α=1 body" in note
    assert (cfg.model.init, cfg.model.freeze) == (None, None)
    assert "from scratch" in recipe_line(cfg)
    # same width: the default init stays
    cfg = load_config(cls, options={"model.alpha": 1.0})
    assert drop_default_init(cfg) is None and cfg.model.init == "face-ssd"
    # an init the user chose is never dropped silently (loading then fails, naming the shapes)
    cfg = load_config(cls, options={"model.alpha": 0.25, "model.init": "face-ssd"})
    assert drop_default_init(cfg) is None and cfg.model.init == "face-ssd"
