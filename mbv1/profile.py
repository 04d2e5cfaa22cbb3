"""Paper-vs-mbv1 cost tables: every params / mult-adds figure of Tables 2–9 recomputed from
the built modules (``mbv1 profile``), and TF-slim's MobileNetV2 table for the second body
(``mbv1 profile --body mobilenet_v2``). Each task declares its own rows (SSD, PlaNet, faces):
``Task.cost_rows``, gathered by :func:`mbv1.tasks.cost_rows`."""

from __future__ import annotations

from torch import nn

from mbv1 import paper
from mbv1.backbone import MobileNetV1
from mbv1.backbone.bodies import BODIES, build_body
from mbv1.backbone.costs import Costs, count_costs
from mbv1.backbone.layers import ConvBNAct, DepthwiseSeparable
from mbv1.errors import MBV1Error
from mbv1.profile_row import ProfileRow


def backbone_costs(alpha: float, resolution: int, variant: str = "separable",
                   num_classes: int = 1000) -> Costs:
    return count_costs(MobileNetV1(alpha, num_classes=num_classes, variant=variant), resolution)


def table2_rows() -> list[ProfileRow]:
    costs = backbone_costs(1.0, 224)
    rows = []
    for kind, (madds_pct, params_pct) in paper.TABLE2.items():
        ours_madds, ours_params = costs.share(kind)
        note = paper.QUIRKS["table2_stem"] if kind == "stem" else ""
        name = paper.TABLE2_NAMES[kind]
        rows.append(ProfileRow("Table 2", name, "mult-adds share", "%", madds_pct, ours_madds, note,
                               corrected=paper.TABLE2_CORRECTED.get(kind)))
        rows.append(ProfileRow("Table 2", name, "params share", "%", params_pct, ours_params,
                               "conv/FC weights only"))
    return rows


def table3_rows() -> list[ProfileRow]:
    """One layer (D_K=3, M=N=512, D_F=14) made cheaper step by step (Table 3)."""
    steps = [
        (ConvBNAct(512, 512, 3), 14),
        (DepthwiseSeparable(512, 512, 1), 14),
        (DepthwiseSeparable(384, 384, 1), 14),  # α = 0.75
        (DepthwiseSeparable(384, 384, 1), 10),  # ρ = 0.714: 14 → 10
    ]
    rows = []
    for (name, madds, params), (module, size) in zip(paper.TABLE3, steps):
        c = count_costs(module, size, in_channels=module_in_channels(module))
        rows.append(ProfileRow("Table 3", name, "mult-adds", "M", madds, c.mult_adds / 1e6))
        rows.append(ProfileRow("Table 3", name, "params", "M", params, c.weights / 1e6,
                               "weights only"))
    return rows


def module_in_channels(module: nn.Module) -> int:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d)).in_channels


def imagenet_rows() -> list[ProfileRow]:
    rows = []
    for r in paper.IMAGENET_ROWS:
        c = backbone_costs(r.alpha, r.resolution, r.variant)
        rows.append(ProfileRow(r.table, r.model, "mult-adds", "M", r.mult_adds_m, c.mult_adds / 1e6))
        rows.append(params_row(r, c))
    return rows


def params_row(r: paper.Row, c: Costs) -> ProfileRow:
    return ProfileRow(r.table, r.model, "params", "M", r.params_m, c.params / 1e6,
                      weights_only=c.weights / 1e6)


def table10_rows() -> list[ProfileRow]:
    """Stanford Dogs: the same bodies with a 120-way FC."""
    rows = []
    for r in paper.TABLE10:
        if r.alpha is None:
            continue
        c = backbone_costs(r.alpha, r.resolution, num_classes=120)
        rows.append(ProfileRow(r.table, r.model, "mult-adds", "M", r.mult_adds_m, c.mult_adds / 1e6))
        rows.append(params_row(r, c))
    return rows


def paper_rows() -> list[ProfileRow]:
    """Every backbone cost figure of Tables 2–10, paper beside mbv1 (the tasks' own rows:
    :func:`mbv1.tasks.cost_rows`)."""
    return table2_rows() + table3_rows() + imagenet_rows() + table10_rows()


def body_costs(body: str, alpha: float, resolution: int, variant: str = "separable",
                num_classes: int = 1000) -> Costs:
    """Costs of any body (:data:`mbv1.backbone.bodies.BODIES`) at one setting."""
    if body not in BODIES:
        raise MBV1Error(f"--body must be one of {', '.join(BODIES)}; got {body!r}")
    if body != "mobilenet_v1" and variant != "separable":
        raise MBV1Error(f"{body} has only the separable variant (Tables 4-5's variants are "
                        "MobileNetV1's): drop --variant")
    if not 0 < alpha <= 4:
        raise MBV1Error(f"--alpha must be in (0, 4]; got {alpha}")
    return count_costs(build_body(body, alpha=alpha, num_classes=num_classes, variant=variant),
                       resolution)


def v2_pair(r: paper.Row, c: Costs) -> list[ProfileRow]:
    """TF-slim's MobileNetV2 row beside mbv1's count: MACs, and params as conv + FC weights
    (the table's convention, ``paper.QUIRKS["v2_slim_counts"]``), all trainable ones noted."""
    return [ProfileRow(r.table, r.model, "mult-adds", "M", r.mult_adds_m, c.mult_adds / 1e6),
            ProfileRow(r.table, r.model, "params", "M", r.params_m, c.weights / 1e6,
                       f"conv/FC weights; all params {c.params / 1e6:.2f} M")]


def v2_rows() -> list[ProfileRow]:
    """Every row of TF-slim's MobileNetV2 table (1000-way FC), beside mbv1's counts."""
    rows = []
    for r in paper.V2_IMAGENET_ROWS:
        rows += v2_pair(r, body_costs("mobilenet_v2", r.alpha, r.resolution))
    return rows


def custom_rows(alpha: float, resolution: int, variant: str = "separable",
                num_classes: int = 1000, body: str = "mobilenet_v1"
                ) -> tuple[Costs, list[ProfileRow]]:
    """Costs of one setting, with the paper's (or TF-slim's, for MobileNetV2) ImageNet row for
    it when there is one."""
    costs = body_costs(body, alpha, resolution, variant, num_classes)
    rows = []
    if num_classes == 1000:
        for r in paper.rows_for(paper.IMAGENET, alpha, resolution, variant, body):
            if body == "mobilenet_v2":
                rows += v2_pair(r, costs)
                continue
            rows.append(ProfileRow(r.table, r.model, "mult-adds", "M", r.mult_adds_m,
                                   costs.mult_adds / 1e6))
            rows.append(params_row(r, costs))
    return costs, rows
