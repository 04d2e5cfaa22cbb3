"""Table 11's costs: PlaNet MobileNet's params and mult-adds counted from the built model, and
the cell count that the paper's 13 M params imply (9,554 at α=1, 224 px)."""

from __future__ import annotations

from dataclasses import dataclass

from mbv1.backbone.costs import count_costs
from mbv1.backbone.mobilenet import MobileNetV1
from mbv1.geo.model import PAPER_ROW, build_geo_model
from mbv1.paper import QUIRKS
from mbv1.profile_row import ProfileRow


@dataclass(frozen=True)
class GeoCosts:
    """Costs of a GeoModel for one image; ``final_layer_params`` = (features + 1) · cells."""

    num_cells: int
    alpha: float
    resolution: int
    params: int
    mult_adds: int
    body_params: int
    final_layer_params: int

    def __str__(self) -> str:
        return (f"PlaNet MobileNet α={self.alpha} at {self.resolution}, {self.num_cells} cells: "
                f"{self.params / 1e6:.2f} M params ({self.body_params / 1e6:.2f} M body + "
                f"{self.final_layer_params / 1e6:.2f} M final layer), "
                f"{self.mult_adds / 1e6:.1f} M mult-adds | paper Table 11: "
                f"{PAPER_ROW.params_m:g} M params, {PAPER_ROW.mult_adds_m:g} M mult-adds")


def geo_costs(num_cells: int, alpha: float = 1.0, resolution: int = 224,
              **backbone_kw) -> GeoCosts:
    """Params and mult-adds of :func:`build_geo_model` (counted by ``count_costs``).

    Args:
        num_cells: classes.
        alpha: width multiplier.
        resolution: input side in pixels (the resolution multiplier).
    """
    model = build_geo_model(num_cells, alpha=alpha, **backbone_kw)
    c = count_costs(model, resolution)
    final = sum(p.numel() for p in model.classifier.parameters())
    return GeoCosts(num_cells, alpha, resolution, c.params, c.mult_adds, c.params - final, final)


def cells_for_params(params: float = PAPER_ROW.params_m * 1e6, alpha: float = 1.0,
                     **backbone_kw) -> int:
    """The cell count whose GeoModel has closest to ``params`` parameters (13 M → 9,554)."""
    body = MobileNetV1(alpha=alpha, num_classes=0, **backbone_kw)
    body_params = sum(p.numel() for p in body.parameters())
    per_cell = body.num_features + 1
    cells = round((params - body_params) / per_cell)
    if cells < 1:
        raise ValueError(f"{params:.0f} params is less than the body's {body_params} + one cell")
    return int(cells)


def geo_cost_rows() -> list:
    """``mbv1 profile``: Table 11's PlaNet MobileNet (13 M params, 0.58 B mult-adds) beside
    mbv1's GeoModel with the cell count that 13 M params implies (9,554 at α=1, 224 px)."""
    cells = cells_for_params()
    c = geo_costs(cells, PAPER_ROW.alpha, PAPER_ROW.resolution)
    model = f"{PAPER_ROW.model} ({cells:,} cells)"
    note = (f"{c.body_params / 1e6:.2f} M body + {c.final_layer_params / 1e6:.2f} M final layer "
            f"(paper: 3 M + 10 M)")
    return [ProfileRow(PAPER_ROW.table, model, "mult-adds", "B", PAPER_ROW.mult_adds_m / 1000,
                       c.mult_adds / 1e9, QUIRKS["table11_units"]),
            ProfileRow(PAPER_ROW.table, model, "params", "M", PAPER_ROW.params_m, c.params / 1e6,
                       note)]
