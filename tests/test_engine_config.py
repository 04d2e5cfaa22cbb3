"""The engine's config: typed sections, recipes, overrides, suggestions, resume rules."""

from pathlib import Path

import pytest
import yaml

from mbv1.engine.config import config_from_dict, load_config
from mbv1.errors import MBV1Error
from mbv1.tasks import TASKS, get_task

CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.yaml"))
Classification = get_task("classification")


def test_precedence_defaults_recipe_options_set(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: classification\ntrain: {lr: 0.5, epochs: 3}\nmodel: {alpha: 0.5}\n")
    cfg = load_config(Classification, recipe, ["train.lr=1e-4", "data.mean=[0.4, 0.4, 0.4]"],
                      {"train.epochs": 7, "model.resolution": None})
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)  # YAML reads 1e-4 as a string
    assert cfg.train.epochs == 7 and cfg.model.alpha == 0.5 and cfg.model.resolution == 224
    assert cfg.data.mean == (0.4, 0.4, 0.4)
    assert {"train.lr", "train.epochs", "model.alpha", "data.mean"} <= cfg.explicit
    assert "model.resolution" not in cfg.explicit
    assert cfg.data.layout == "auto"  # the classification task's own data section


@pytest.mark.parametrize("override,match", [
    ("train.lrr=0.1", "did you mean 'train.lr'"),
    ("trian.lr=0.1", "did you mean 'train'"),
    ("train.optimizer=sgdd", "rmsprop, sgd, adamw"),
    ("train.epochs=1.5", "train.epochs must be an integer"),
    ("train.amp=2", "true or false"),
    ("data.mean=[1, 2]", "list of 3 values"),
    ("model.alpha=wide", "model.alpha must be a number"),
    ("train.device=gpu", "auto, cpu, cuda or cuda:N"),
    ("train.lr", "section.key=value"),
    ("model.init=[1", "not valid YAML"),
    ("data.val_split=__import__('os')", "must be a number"),  # never evaluated
])
def test_bad_overrides_name_the_key_and_allowed_values(override, match):
    with pytest.raises(MBV1Error, match=match.replace("[", r"\[").replace("(", r"\(")):
        load_config(Classification, None, [override])


def test_unknown_key_in_a_recipe_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  batchsize: 32\n")
    with pytest.raises(MBV1Error, match="did you mean 'train.batch_size'"):
        load_config(Classification, recipe)
    recipe.write_text("task: detection\n")
    with pytest.raises(MBV1Error, match="recipe for task 'detection'"):
        load_config(Classification, recipe)
    recipe.write_text("task: [classification, fine-grained]\n")
    assert load_config(Classification, recipe).task == "classification"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_recipe_resolves_for_its_task(path):
    tasks = yaml.safe_load(path.read_text())["task"]
    for task in tasks if isinstance(tasks, list) else [tasks]:
        assert task in TASKS
        cfg = load_config(get_task(task), path)
        assert cfg.run.recipe, f"{path} must name its recipe"
        assert f"mbv1 train {task}" in path.read_text(), f"{path} must show its command"
        again = config_from_dict(get_task(task), cfg.to_dict())  # the checkpoint round trip
        assert again.to_dict() == cfg.to_dict()


def test_recipes_cover_the_paper_rows():
    from mbv1 import paper

    settings = set()
    for path in CONFIGS:
        cfg = yaml.safe_load(path.read_text())
        for task in cfg["task"] if isinstance(cfg["task"], list) else [cfg["task"]]:
            settings.add((task, cfg["model"]["alpha"], cfg["model"]["resolution"],
                          cfg["model"].get("variant", "separable")))
    for r in paper.IMAGENET_ROWS:
        assert ("classification", r.alpha, r.resolution, r.variant) in settings, r.model
    for r in paper.TABLE10:
        if r.alpha is not None:
            assert ("fine-grained", r.alpha, r.resolution, "separable") in settings, r.model


def test_saved_config_is_plain_yaml(tmp_path):
    cfg = load_config(Classification, None, ["train.milestones=[30, 60]"])
    cfg.save(tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["task"] == "classification" and data["train"]["milestones"] == [30.0, 60.0]
    assert data["data"]["mean"] == [0.5, 0.5, 0.5]


def test_unknown_task_suggests():
    with pytest.raises(MBV1Error, match="did you mean 'classification'"):
        get_task("clasification")


def test_data_loader_workers_never_outnumber_the_cores():
    import os

    from mbv1.devices import loader_workers

    cores = len(os.sched_getaffinity(0))
    assert loader_workers(0) == 0 and loader_workers(1) == 1
    assert loader_workers(cores + 3) == cores and loader_workers(4) == min(4, cores)
