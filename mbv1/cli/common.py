"""Shared CLI pieces: choices, the rich console and table renderers. No torch imports."""

from __future__ import annotations

import json
from enum import Enum
from functools import lru_cache
from typing import Annotated

import typer


class Variant(str, Enum):
    separable = "separable"
    full = "full"
    shallow = "shallow"


class Body(str, Enum):
    mobilenet_v1 = "mobilenet_v1"
    mobilenet_v2 = "mobilenet_v2"


class PeerFormat(str, Enum):
    timm = "timm"
    tf_slim = "tf-slim"
    keras = "keras"
    torchvision = "torchvision"


def device_option(value: str) -> str:
    """Callback of every ``--device``: ``auto`` becomes ``cuda`` when PyTorch sees a GPU, else
    ``cpu`` (the choice printed once, on stderr)."""
    if value != "auto":
        return value
    from mbv1.devices import auto_device

    return auto_device()


# every command's --device: auto by default, as ultralytics does
DeviceOpt = Annotated[str, typer.Option(help="auto (cuda when PyTorch sees a GPU, else cpu), cpu, "
                                             "cuda or cuda:N.", callback=device_option)]

BACKEND_HELP = ("Inference engine: auto (on the CPU the fastest runtime that passes its parity "
                "check: OpenVINO, then ONNX Runtime; else eager), eager, onnxruntime, openvino.")


def leave_cores_to_runtimes(*backends: str) -> None:
    """When a network runs on an exported runtime (OpenVINO, ONNX Runtime: their own thread
    pools), PyTorch keeps one thread for what it still does (MTCNN landmarks, pre- and
    post-processing): two spinning pools on the same cores slow each other. Measured on
    carphone_pristine.mp4, 2 cores: the face SSD on OpenVINO 103 → 58 ms and MTCNN 158 → 44 ms
    per frame with torch at 1 thread instead of 2."""
    if any(b not in ("eager", None) for b in backends):
        import torch

        torch.set_num_threads(1)


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    int8 = "int8"


class Backend(str, Enum):
    auto = "auto"
    eager = "eager"
    onnxruntime = "onnxruntime"
    openvino = "openvino"


@lru_cache(maxsize=1)
def console():
    import sys

    from rich.console import Console

    # Piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 150)


@lru_cache(maxsize=1)
def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """``error: <message>`` on stderr; the message is plain text (``[x, y]`` stays)."""
    from rich.markup import escape

    err_console().print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:,.3f}" if value < 100 else f"{value:,.1f}"


def print_profile(rows, title: str | None = None) -> None:
    """Render ProfileRows: table, model, quantity, paper, mbv1, difference, ok."""
    from rich.table import Table

    table = Table(title=title or "Paper (Howard et al. 2017) vs mbv1, counted from the built "
                                 "modules")
    for col in ("table", "model", "quantity", "paper", "mbv1", "diff", "ok", "note"):
        table.add_column(col, justify="right" if col in ("paper", "mbv1", "diff") else "left")
    for r in rows:
        unit = "%" if r.unit == "%" else f" {r.unit}"
        diff = f"{r.diff:+.2f} pt" if r.unit == "%" else f"{100 * r.diff / r.paper:+.2f}%"
        note = r.note
        if r.unit != "%" and r.weights_only is not None and not r._agrees(r.mbv1):
            note = (note + "; " if note else "") + f"paper counts weights only: {r.weights_only:.3f} M"
        table.add_row(r.table, r.model, r.quantity, _fmt(r.paper, r.unit) + ("" if r.unit == "%" else unit),
                      _fmt(r.mbv1, r.unit) + ("" if r.unit == "%" else unit), diff,
                      "[green]yes[/]" if r.ok else "[red]NO[/]", note)
    console().print(table)
    bad = sum(not r.ok for r in rows)
    console().print(f"{len(rows) - bad}/{len(rows)} figures agree with the paper "
                    "(within 0.5% or at its printed precision; Table 2 within 0.1 points)")


def print_costs(costs, title: str) -> None:
    from rich.table import Table

    from mbv1.paper import TABLE2_NAMES

    table = Table(title=title)
    for col in ("layer type", "mult-adds (M)", "share", "params", "weights share"):
        table.add_column(col, justify="left" if col == "layer type" else "right")
    for kind, t in costs.by_type.items():
        if not (t.params or t.mult_adds):
            continue
        madds_pct, params_pct = costs.share(kind)
        table.add_row(TABLE2_NAMES.get(kind, "Conv 3x3 (full)" if kind == "conv" else kind),
                      f"{t.mult_adds / 1e6:,.2f}", f"{madds_pct:.2f}%", f"{t.params:,}",
                      f"{params_pct:.2f}%")
    table.add_row("total", f"{costs.mult_adds / 1e6:,.2f}", "100%", f"{costs.params:,}", "100%")
    console().print(table)


def _shorten(value, limit: int = 200):
    """Long strings (a geolocation partition's CSV text) and lists cut for display."""
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value):,} characters; `mbv1 info --json` prints all)"
    if isinstance(value, list) and len(value) > 50:
        return [*value[:20], f"… {len(value):,} items"]
    return value


def print_info(path, summary: dict) -> None:
    from rich.pretty import Pretty

    c = console()
    c.print(f"[bold]{path}[/]: mbv1 checkpoint v{summary['format_version']}, task "
            f"[bold]{summary['task']}[/], {summary['tensors']} tensors"
            + (", resumable (optimizer state)" if summary["resumable"] else ""))
    c.print("[bold]meta[/]")
    c.print(Pretty(_shorten(summary["meta"])))
    c.print("[bold]config[/]")
    c.print(Pretty(summary["config"]))


def warn(message: str) -> None:
    from rich.markup import escape

    err_console().print(f"[yellow]warning:[/] {escape(message)}", markup=True, soft_wrap=True)


def run_with_progress(label: str, fn):
    """Call ``fn(progress)`` under a rich progress line (frames, detections) on a terminal;
    ``progress(frames_done, detections_in_frame)``."""
    import sys

    if not sys.stderr.isatty():
        return fn(None)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console(), transient=True) as bar:
        task = bar.add_task(label, total=None)
        total = [0, 0]

        def progress(frames: int, dets: int) -> None:
            total[0], total[1] = frames, total[1] + dets
            bar.update(task, description=f"{label}: {frames} frames, {total[1]} detections")

        return fn(progress)


def print_int8(model, verb: str, what: str, c=None) -> None:
    """The line that says a model runs int8, with its gate's figure (nothing when fp32: the
    refusal is the model's own ``warn`` line). On stderr unless ``c`` is given."""
    gate = getattr(model, "int8_gate", None)
    if gate and getattr(model, "precision", "fp32") == "int8":
        (c or err_console()).print(
            f"int8: it {verb} {100 * gate['agreement']:.1f}% ({gate['agreed']}/{gate['total']}) "
            f"{what} (gate {100 * gate['min_agreement']:.0f}%; --precision fp32 to run fp32)",
            markup=False, soft_wrap=True)


def print_speed(result, detector) -> None:
    """The closing lines of ``detect``: counts, where the output is, ms per stage."""
    c = console()
    ms = result.ms
    c.print(f"{result.frames} frames, {result.detections} detections "
            f"({detector.backend}{' int8' if getattr(detector, 'precision', 'fp32') == 'int8' else ''}, "
            f"{detector.pre.input_size}x{detector.pre.input_size}, {detector.device})")
    print_int8(detector, "reproduces", "of fp32's detections on held-out real frames", c)
    if result.video:
        c.print(f"annotated video: {result.video}")
    if result.predictions:
        c.print(f"predictions: {result.predictions}")
    elif result.out_dir:
        c.print(f"results saved to {result.out_dir}")
    fps = result.frames / result.wall_s if result.wall_s else 0.0
    c.print(f"Speed: {ms['decode']:.1f} ms decode, {ms['preprocess']:.1f} ms preprocess, "
            f"{ms['inference']:.1f} ms inference, {ms['postprocess']:.1f} ms postprocess per frame "
            f"({fps:.1f} frames/s end to end, decoding and writing beside the model)")
