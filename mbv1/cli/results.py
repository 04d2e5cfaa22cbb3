"""Rendering of engine results: evaluations, predictions, the runs report. No torch imports."""

from __future__ import annotations

import re

from rich.markup import escape
from rich.table import Table

from mbv1.cli.common import console


def _metric_rows(values: dict) -> list[tuple[str, str]]:
    out = []
    for k, v in values.items():
        if k in ("images", "eval_time_s"):
            continue
        out.append((k, f"{v:.2f}%" if k.startswith("top") or k.endswith("_acc") else f"{v:.4g}"))
    return out


def split_line(split: str, values: dict) -> str:
    """The split's name with how many samples it holds (images, or faces for the face tasks),
    unless the name already says."""
    if re.search(r"\d[\d,]* (images|faces|photos)", split):
        return split
    for key in ("images", "faces"):
        if key in values:
            return f"{split} ({int(values[key]):,} {key})"
    return split


def print_evaluation(ev) -> None:
    """Metrics, the paper's row for the same setting beside mbv1's, and the task's details."""
    from mbv1.engine.report import paper_comparison

    c, meta, m = console(), ev.meta, ev.metrics
    from mbv1.backbone.pretrained import BODY_LABELS

    arch = meta.get("ssd") or meta.get("faster_rcnn") or {}
    body = meta.get("backbone") or arch.get("backbone") or "mobilenet_v1"
    recipe = meta.get("recipe") or meta.get("source") or "?"
    c.print(f"[bold]{escape(str(ev.checkpoint))}[/]: {ev.task.name}, {BODY_LABELS.get(body, body)} "
            f"α={meta.get('alpha') or arch.get('alpha')} at "
            f"{meta.get('resolution') or meta.get('input_size')} px, recipe: {escape(str(recipe))}")
    c.print(f"split: {escape(split_line(m.split, m.values))}")
    t = Table(title="mbv1")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in _metric_rows(m.values):
        t.add_row(k, v)
    c.print(t)
    rows = ev.paper or []
    p = Table(title="Paper (Howard et al. 2017) vs mbv1")
    for col in ("table", "model", "paper metric", "paper", "mbv1", "diff",
                "params M (paper / mbv1)", "mult-adds M (paper / mbv1)", "note"):
        p.add_column(col, justify="right" if col in ("paper", "mbv1", "diff") else "left")
    mbv1_params = (meta.get("num_params") or 0) / 1e6
    mbv1_madds = (meta.get("mult_adds") or 0) / 1e6
    for r in rows:
        cmp = paper_comparison(meta, {**m.values, "primary": m.primary}, [r])
        diff = f"{cmp['diff']:+.2f}" if cmp["diff"] is not None else "n/a"
        p.add_row(r["table"], r["model"], r["metric"], f"{r['value']:.1f}%",
                  f"{m.value:.2f}% ({m.primary})", diff,
                  f"{r['params_m']} / {mbv1_params:.3f}", f"{r['mult_adds_m']} / {mbv1_madds:.1f}",
                  escape(r.get("note") or f"same data; mbv1 on {m.split}"))
    if rows:
        c.print(p)
    else:
        c.print(f"the paper has no row for α={meta.get('alpha')} at "
                f"{meta.get('resolution') or meta.get('input_size')} px "
                f"({ev.task.paper_metric}); mbv1: {m.primary} {m.value:.2f} on {escape(m.split)}, "
                f"{mbv1_params:.3f} M params, {mbv1_madds:.1f} M mult-adds")
    for line in ev.task.describe(m, meta):
        c.print(escape(line))


def evaluation_json(ev) -> dict:
    return {"checkpoint": str(ev.checkpoint), "task": ev.task.name, "metrics": ev.metrics.to_dict(),
            "details": ev.metrics.details, "paper": ev.paper,
            "num_params": ev.meta.get("num_params"), "mult_adds": ev.meta.get("mult_adds"),
            "recipe": ev.meta.get("recipe")}


def print_predictions(preds) -> None:
    c = console()
    for p in preds:
        if p.error:
            c.print(f"[red]{escape(p.path)}: {escape(p.error)}[/]")
            continue
        tops = ", ".join(f"{escape(lab)} {100 * v:.1f}%" for lab, _, v in p.top)
        c.print(f"{escape(p.path)}: {tops}")


def print_report(rows) -> None:
    from mbv1.engine.report import COLUMNS, table_cells

    t = Table(title="mbv1 runs vs the paper (Howard et al. 2017)")
    for col in COLUMNS:
        t.add_column(col, justify="right" if col in ("paper", "mbv1", "diff") else "left",
                     overflow="fold")
    for r in rows:
        t.add_row(*(escape(x) for x in table_cells(r)))
    console().print(t)
