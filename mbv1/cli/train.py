"""CLI of the training engine: ``mbv1 train``, ``eval``, ``classify``, ``report``, ``data``.

Thin: every command parses options into a config and calls one library function
(:mod:`mbv1.engine`, :mod:`mbv1.tasks.classification`). No torch import at module level.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from mbv1.cli import common
from mbv1.errors import MBV1Error

data_app = typer.Typer(help="Write datasets in real layouts (digits, synthetic Stanford Dogs).",
                       no_args_is_help=True)

TaskArg = Annotated[str, typer.Argument(help="Task: classification, fine-grained, ... (mbv1.tasks.TASKS).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config key: section.key=value (repeatable), e.g. --set train.lr=0.01.")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto (the default: cuda when PyTorch sees a GPU, else cpu), cpu, cuda or cuda:N (train.device; a resumed run keeps its own).")]


def train(
    task: TaskArg,
    data: Annotated[str | None, typer.Option(help="Dataset folder (data.path).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML recipe, e.g. configs/classification/digits.yaml.")] = None,
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(help="Run name: runs/<task>/<name>/ (auto-suffixed).")] = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Reuse runs/<task>/<name>/ instead of suffixing.")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last.pt.")] = None,
    device: DeviceOpt = None,
    epochs: Annotated[int | None, typer.Option(help="train.epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch size (train.batch_size).")] = None,
    alpha: Annotated[float | None, typer.Option(help="Width multiplier α (model.alpha).")] = None,
    resolution: Annotated[int | None, typer.Option(help="Input side in pixels (model.resolution).")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loader workers per process.")] = None,
    seed: Annotated[int | None, typer.Option(help="train.seed")] = None,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms (train.deterministic).")] = False,
    init: Annotated[str | None, typer.Option(help="Start from these weights (model.init): mbv1 checkpoint or run, timm/TF-slim/Keras file.")] = None,
    teacher: Annotated[str | None, typer.Option(help="detection: distil this detector (coco-ssdlite, face-ssd or a checkpoint) on the unlabelled photos and videos of --data (default: the embedded real clips and photos) (distill.teacher).")] = None,
):
    """Train a task with the shared engine; `torchrun --nproc_per_node=N -m mbv1 train ...` for DDP."""
    from mbv1 import engine
    from mbv1.tasks import get_task

    task_cls = get_task(task)
    options = {"data.path": data, "run.name": name, "train.device": device, "train.epochs": epochs,
               "train.batch_size": batch_size, "model.alpha": alpha, "model.resolution": resolution,
               "train.workers": workers, "train.seed": seed, "model.init": init,
               "train.deterministic": True if deterministic else None, "distill.teacher": teacher}
    overrides = list(set_ or [])
    if resume is not None:
        if config is not None:
            raise MBV1Error("--config cannot be combined with --resume: a resumed run keeps the "
                            "config saved in its last.pt")
        cfg = engine.resume_config(task_cls, resume, options, overrides)
    else:
        cfg = engine.load_config(task_cls, config, overrides, options)
    command = shlex.join(["mbv1", *sys.argv[1:]])
    result = engine.train(task_cls, cfg, resume=resume, exist_ok=exist_ok, command=command)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if result.interrupted:
        import signal

        name_ = signal.Signals(result.interrupted).name
        print(f"interrupted by {name_}: saved {result.run_dir / 'last.pt'} after "
              f"{result.epochs_done} whole epochs; continue with: mbv1 train {task} --resume "
              f"{result.run_dir}", flush=True)
        sys.exit(128 + result.interrupted)  # SystemExit: click would swallow typer.Exit's code
    m = result.metrics
    best = (f"; best {m.get('primary')} {result.best:.4g} at epoch {result.best_epoch} on "
            f"{m.get('split')}" if result.best is not None else "")
    weights = result.run_dir / "best.pt"
    if not weights.exists():  # never evaluated (no eval split): the last weights
        weights = result.run_dir / "last.pt"
    print(f"done: epoch {result.epochs_done}/{cfg.train.epochs} ({result.wall_s:.1f} s in this "
          f"session){best}; weights {weights}", flush=True)


def evaluate(
    task: TaskArg,
    checkpoint: Annotated[Path, typer.Argument(help="An mbv1 checkpoint or run folder.")],
    data: Annotated[str | None, typer.Option(help="Dataset folder (default: the one it was trained on).")] = None,
    set_: SetOpt = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loader workers.")] = None,
    device: common.DeviceOpt = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Evaluate a checkpoint (top-1, top-5, per-class accuracy, confusions) beside the paper's row."""
    from mbv1.cli import results
    from mbv1.engine.evaluate import evaluate_checkpoint
    from mbv1.tasks import get_task

    options = {"data.path": data, "train.batch_size": batch_size, "train.workers": workers,
               "train.device": device}
    ev = evaluate_checkpoint(get_task(task), checkpoint, options=options, overrides=list(set_ or []))
    if json_out:
        common.print_json(results.evaluation_json(ev))
    else:
        results.print_evaluation(ev)


def classify(
    sources: Annotated[list[str], typer.Argument(help="Images, folders or glob patterns.")],
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Classification checkpoint or run folder.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Classes to show per image.")] = 5,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    device: common.DeviceOpt = "auto",
    backend: Annotated[common.Backend, typer.Option(help=common.BACKEND_HELP)] = common.Backend.auto,
    precision: Annotated[common.Precision, typer.Option(help="On OpenVINO: auto (int8 when its top-1 agrees with fp32's on held-out real images at least 99% of the time, else fp32 with a note), fp32, or int8 (forced).")] = common.Precision.auto,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Top-k classes with label names for an image, a folder or a glob."""
    from mbv1.classification import Classifier
    from mbv1.cli import results
    from mbv1.datasets.folder import expand_sources

    if top_k < 1:
        raise MBV1Error(f"--top-k must be at least 1; got {top_k}")
    paths = expand_sources(sources)
    clf = Classifier(weights, device, backend.value, warn=common.warn, precision=precision.value)
    common.leave_cores_to_runtimes(clf.backend)
    if clf.int8_gate and clf.int8_gate["passed"]:  # else the model's warning said it
        common.print_int8(clf, "keeps fp32's top-1 class on", "held-out real images")
    preds = list(clf.predict(paths, top_k, batch_size))
    if json_out:
        common.print_json([{"path": p.path, "error": p.error,
                            "top": [{"label": lab, "index": i, "prob": round(v, 6)}
                                    for lab, i, v in p.top]} for p in preds])
    else:
        results.print_predictions(preds)
    if any(p.error for p in preds):
        sys.exit(1)


def report(
    runs: Annotated[list[Path] | None, typer.Argument(help="Run folders or checkpoints (default: every run under --root).")] = None,
    root: Annotated[Path, typer.Option(help="Where runs live.")] = Path("runs"),
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a markdown table (for docs/).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """One table of every evaluated run, any task: paper vs mbv1, costs, split and recipe."""
    from mbv1.cli import results
    from mbv1.engine.report import report_rows, to_markdown

    rows = report_rows(runs, root)
    if not rows:
        raise MBV1Error(f"no evaluated runs in {', '.join(map(str, runs or [root]))}")
    if json_out:
        common.print_json([r.to_dict() for r in rows])
    elif markdown:
        print(to_markdown(rows))
    else:
        results.print_report(rows)


@data_app.command("digits")
def data_digits(
    out: Annotated[Path, typer.Argument(help="Output folder (new or empty).")],
    size: Annotated[int, typer.Option(help="Side of the written PNGs in pixels.")] = 32,
    val_fraction: Annotated[float, typer.Option(help="Share of each digit held out in val/.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split.")] = 0,
    per_class: Annotated[int | None, typer.Option(help="Keep only N images per digit.")] = None,
):
    """Write scikit-learn's 1,797 real digit images as OUT/train/<digit>/ and OUT/val/<digit>/."""
    from mbv1.datasets.digits import write_digits

    s = write_digits(out, size, val_fraction, seed, per_class)
    common.console().print(f"wrote {s['train']} train and {s['val']} val digits ({size}x{size} "
                           f"PNG) to {out}", markup=False)


@data_app.command("dogs-synthetic")
def data_dogs(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    train_per_class: Annotated[int, typer.Option(help="Train images per breed.")] = 8,
    test_per_class: Annotated[int, typer.Option(help="Test images per breed.")] = 4,
):
    """Write a small synthetic tree in Stanford Dogs' official layout (Images/, Annotation/, lists/*.mat)."""
    from mbv1.datasets.synthetic import write_stanford_dogs

    write_stanford_dogs(out, train_per_class=train_per_class, test_per_class=test_per_class)
    common.console().print(f"wrote a synthetic Stanford Dogs tree to {out}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the engine's commands to the ``mbv1`` app."""
    app.command("train")(train)
    app.command("eval")(evaluate)
    app.command("classify")(classify)
    app.command("report")(report)
    app.add_typer(data_app, name="data")
