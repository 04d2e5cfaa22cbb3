"""One paper-vs-mbv1 cost figure (``mbv1 profile``): a leaf module, so that the backbone tables
(:mod:`mbv1.profile`) and every domain's own rows (``detection/costs.py``, ``geo/costs.py``,
``faces/costs.py``) build rows without importing one another."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

TOLERANCE_PCT = 0.5


@dataclass
class ProfileRow:
    """One compared figure. ``unit`` is ``M`` (millions) or ``%``."""

    table: str
    model: str
    quantity: str  # "params", "mult-adds", "mult-adds share", "params share"
    unit: str
    paper: float
    mbv1: float
    note: str = ""
    weights_only: float | None = None  # params rows: conv/FC weights alone (no BN, no bias)
    corrected: float | None = None  # where the printed figure is a known misprint (paper.QUIRKS)

    @property
    def diff(self) -> float:
        return self.mbv1 - self.paper

    @property
    def ok(self) -> bool:
        """Within 0.5% of the paper or equal at its printed precision (rounded or truncated);
        Table 2's percentages within 0.1 points. Params rows also accept the weights-only
        count, which some of the paper's rows use (e.g. Table 9's 1.32 M)."""
        if self.unit == "%":
            target = self.corrected if self.corrected is not None else self.paper
            return abs(self.mbv1 - target) <= 0.1
        return any(self._agrees(v) for v in (self.mbv1, self.weights_only) if v is not None)

    def _agrees(self, value: float) -> bool:
        d = printed_decimals(self.paper)
        scale = 10**d
        return (abs(value - self.paper) <= TOLERANCE_PCT / 100 * abs(self.paper)
                or round(value, d) == round(self.paper, d)
                or math.floor(value * scale + 1e-9) / scale == self.paper)

    def to_dict(self) -> dict:
        return {**asdict(self), "diff": round(self.diff, 4), "ok": self.ok}


def printed_decimals(value: float) -> int:
    text = repr(float(value))
    return 0 if text.endswith(".0") else len(text.split(".")[1])
