"""Table 13's SSD 300 MobileNet row: params and mult-adds counted from the built SSD."""

from __future__ import annotations

from mbv1 import paper
from mbv1.backbone.costs import count_costs
from mbv1.detection.ssd import SSD, SSDConfig
from mbv1.profile_row import ProfileRow


def ssd_costs(num_classes: int = 90, alpha: float = 1.0, resolution: int = 300):
    return count_costs(SSD(SSDConfig(num_classes=num_classes, alpha=alpha)), resolution)


def detection_cost_rows() -> list[ProfileRow]:
    rows = []
    for r in paper.TABLE13:
        if r.alpha is None or not r.model.startswith("SSD"):
            continue
        c = ssd_costs(r.extra["num_classes"], r.alpha, r.resolution)
        # Table 13 prints mult-adds in billions (1.2 B): compare at that precision.
        rows.append(ProfileRow(r.table, r.model + " (COCO, 90 classes)", "mult-adds", "B",
                               r.mult_adds_m / 1000, c.mult_adds / 1e9))
        rows.append(ProfileRow(r.table, r.model + " (COCO, 90 classes)", "params", "M", r.params_m,
                               c.params / 1e6, weights_only=c.weights / 1e6))
    return rows
