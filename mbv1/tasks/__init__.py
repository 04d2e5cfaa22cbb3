"""One module per paper experiment. ``cost_rows`` gathers each task's paper-vs-mbv1 cost rows."""

from __future__ import annotations


def cost_rows() -> list:
    """Paper-vs-mbv1 cost rows of every task that has them (SSD, PlaNet, faces)."""
    rows: list = []
    return rows


def convert_pulled(names: list[str]) -> list[str]:
    """Convert freshly pulled assets into mbv1 checkpoints; returns lines to print."""
    return []


def run_demo(source: str | None = None) -> None:
    """mbv1's main job on its embedded default (the detection task replaces this)."""
    from mbv1 import profile
    from mbv1.cli import common

    common.print_profile(profile.paper_rows())
