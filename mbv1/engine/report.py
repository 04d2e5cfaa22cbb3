"""``mbv1 report``: one table of every evaluated run, whatever the task, beside the paper.

Everything comes from the checkpoint meta the engine writes (costs, metrics with split, paper
rows, recipe), so a new task appears here as soon as it trains through the engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mbv1.checkpoint import load_checkpoint
from mbv1.errors import MBV1Error


@dataclass
class ReportRow:
    run: str
    task: str
    setting: str  # "α=0.25, 32 px"
    metric: str  # "top1"
    split: str
    mbv1: float | None
    paper_row: str | None  # "Table 6 0.25 MobileNet-224 (ImageNet top-1)"
    paper: float | None
    diff: float | None  # None when the datasets differ
    params_paper_m: float | None
    params_m: float
    mult_adds_paper_m: float | None
    mult_adds_m: float
    recipe: str
    epoch: int | None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def find_runs(paths: list[str | Path] | None = None, root: str | Path = "runs") -> list[Path]:
    """Run folders (holding best.pt or last.pt) among ``paths``, or every run under ``root``."""
    targets = [Path(p) for p in paths] if paths else [Path(root)]
    found: list[Path] = []
    for t in targets:
        if not t.exists():
            raise MBV1Error(f"run folder not found: {t}")
        if t.is_file() or (t / "best.pt").is_file() or (t / "last.pt").is_file():
            found.append(t)
        else:
            found += sorted({p.parent for p in t.rglob("*.pt") if p.name in ("best.pt", "last.pt")})
    return found


def paper_comparison(meta: dict, metrics: dict, paper_rows: list[dict] | None = None) -> dict:
    """The first paper row of a run with the difference (when the datasets agree)."""
    rows = meta.get("paper") if paper_rows is None else paper_rows
    if not rows:
        return {"paper_row": None, "paper": None, "diff": None, "params_paper_m": None,
                "mult_adds_paper_m": None, "note": "no paper row for this setting"}
    r = rows[0]
    value = metrics.get(metrics.get("primary", ""))
    diff = value - r["value"] if (r.get("comparable") and value is not None
                                  and r.get("value") is not None) else None
    return {"paper_row": f"{r['table']} {r['model']} ({r['metric']})", "paper": r.get("value"),
            "diff": diff, "params_paper_m": r.get("params_m"),
            "mult_adds_paper_m": r.get("mult_adds_m"), "note": r.get("note", "")}


def report_row(run: Path) -> ReportRow | None:
    """The row of one run (its best.pt, else last.pt); ``None`` if never evaluated."""
    path = run if run.is_file() else (run / "best.pt" if (run / "best.pt").is_file()
                                      else run / "last.pt")
    ckpt = load_checkpoint(path)
    meta = ckpt.get("meta") or {}
    metrics = meta.get("metrics") or {}
    if not metrics.get("primary"):
        return None
    alpha, res = meta.get("alpha"), meta.get("resolution") or meta.get("input_size")
    return ReportRow(
        run=str(run), task=ckpt.get("task") or meta.get("task", "?"),
        setting=f"α={alpha}, {res} px", metric=metrics["primary"],
        split=str(metrics.get("split", "?")), mbv1=metrics.get(metrics["primary"]),
        params_m=(meta.get("num_params") or 0) / 1e6,
        mult_adds_m=(meta.get("mult_adds") or 0) / 1e6,
        recipe=str(meta.get("recipe", "")), epoch=metrics.get("epoch"),
        **paper_comparison(meta, metrics))


def report_rows(paths: list[str | Path] | None = None,
                root: str | Path = "runs") -> list[ReportRow]:
    rows = [report_row(r) for r in find_runs(paths, root)]
    return [r for r in rows if r is not None]


def _num(v, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def table_cells(r: ReportRow) -> list[str]:
    """The printed cells of a row (shared by the rich and markdown renderings)."""
    diff = _num(r.diff, "{:+.2f}") if r.paper is not None else "—"
    if r.paper is not None and r.diff is None:
        diff = "n/a (other data)"
    return [r.task, r.setting, f"{r.metric} @ epoch {r.epoch}", _num(r.paper), _num(r.mbv1), diff,
            f"{_num(r.params_paper_m)} / {r.params_m:.3f}",
            f"{_num(r.mult_adds_paper_m, '{:.0f}')} / {r.mult_adds_m:.1f}",
            r.split, r.paper_row or "—", r.recipe, r.run]


COLUMNS = ["task", "setting", "metric", "paper", "mbv1", "diff", "params M (paper / mbv1)",
           "mult-adds M (paper / mbv1)", "split", "paper row", "recipe", "run"]


def to_markdown(rows: list[ReportRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in table_cells(r)) + " |")
    return "\n".join(lines)
