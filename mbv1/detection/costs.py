"""Table 13's MobileNet rows (params and mult-adds counted from the built SSD and Faster
R-CNN) and MobileNetV2 Table 6's MobileNet + SSDLite rows (both bodies, 320x320)."""

from __future__ import annotations

from mbv1 import paper
from mbv1.backbone.costs import Costs, count_costs
from mbv1.detection.ssd import SSD, SSDConfig
from mbv1.profile_row import ProfileRow


def ssd_costs(num_classes: int = 90, alpha: float = 1.0, resolution: int = 300):
    return count_costs(SSD(SSDConfig(num_classes=num_classes, alpha=alpha)), resolution)


def ssdlite_costs(backbone: str, num_classes: int = 80, alpha: float = 1.0,
                  resolution: int = 320) -> Costs:
    """SSDLite (separable extras and predictors) on ``backbone``, TF "SAME" padding."""
    return count_costs(SSD(SSDConfig(num_classes=num_classes, alpha=alpha, backbone=backbone,
                                     head="ssdlite", padding="same")), resolution)


def ssdlite_rows() -> list[ProfileRow]:
    """MobileNetV2 Table 6's MNet V1 / V2 + SSDLite rows (COCO's 80 classes, 320x320:
    ``paper.QUIRKS["v2_table6_classes"]``)."""
    rows = []
    for r in paper.V2_TABLE6:
        if r.alpha is None:
            continue
        n, size = r.extra["num_classes"], r.resolution
        c = ssdlite_costs(r.backbone, n, r.alpha, size)
        name = f"{r.model} (COCO, {n} classes + background, {size}x{size})"
        note = f"paper.QUIRKS['{r.extra['quirk']}']"
        # Table 6 prints mult-adds in billions (0.8 B): compare at that precision.
        rows.append(ProfileRow(r.table, name, "mult-adds", "B", r.mult_adds_m / 1000,
                               c.mult_adds / 1e9, note))
        rows.append(ProfileRow(r.table, name, "params", "M", r.params_m, c.params / 1e6,
                               f"weights only: {c.weights / 1e6:.2f} M",
                               weights_only=c.weights / 1e6))
    return rows


def faster_rcnn_costs(input_size: int | tuple[int, int] = 300, proposals: int = 300,
                      **config) -> Costs:
    """Costs of one test-time pass of :class:`MobileNetFasterRCNN` (``config``: its
    :class:`FasterRCNNConfig` fields) on one image of ``input_size`` with ``proposals`` boxes:
    the first stage (body to conv11, RPN head) once, the box classifier and predictor per
    proposal. Counted by two hooked passes (no proposal, one proposal): the total is the
    first plus ``proposals`` times their difference, exactly what ``proposals`` passes give
    (``MobileNetFasterRCNN.cost_pass``)."""
    from mbv1.detection.faster_rcnn import FasterRCNNConfig, MobileNetFasterRCNN

    model = MobileNetFasterRCNN(FasterRCNNConfig(**config))
    first = count_costs(model, input_size, forward=lambda m, x: m.cost_pass(x, 0))
    one = count_costs(model, input_size, forward=lambda m, x: m.cost_pass(x, 1))
    per_box = one.mult_adds - first.mult_adds
    one.mult_adds = first.mult_adds + proposals * per_box
    for kind, t in one.by_type.items():
        t.mult_adds = first.by_type[kind].mult_adds + proposals * (t.mult_adds
                                                                   - first.by_type[kind].mult_adds)
    return one


def detection_cost_rows() -> list[ProfileRow]:
    rows = []
    for r in paper.TABLE13:
        if r.alpha is None:
            continue
        if r.model.startswith("SSD"):
            c = ssd_costs(r.extra["num_classes"], r.alpha, r.resolution)
            name, note = r.model + " (COCO, 90 classes)", ""
        else:
            p, size = r.extra["proposals"], r.resolution
            c = faster_rcnn_costs(size, p, num_classes=r.extra["num_classes"], alpha=r.alpha,
                                  roi_pool=1)
            tf = faster_rcnn_costs(size, p, num_classes=r.extra["num_classes"], alpha=r.alpha)
            name = f"{r.model} (COCO, 90 classes, {size}x{size}, {p} proposals)"
            note = (f"box classifier at 7x7 (14x14 crop, no 2x2 max-pool); TF OD API layout "
                    f"(max-pool, 4x4): {tf.mult_adds / 1e9:.1f} B; paper.QUIRKS"
                    f"['{r.extra['quirk']}']")
        # Table 13 prints mult-adds in billions (1.2 B): compare at that precision.
        rows.append(ProfileRow(r.table, name, "mult-adds", "B", r.mult_adds_m / 1000,
                               c.mult_adds / 1e9, note))
        rows.append(ProfileRow(r.table, name, "params", "M", r.params_m,
                               c.params / 1e6, weights_only=c.weights / 1e6))
    return rows + ssdlite_rows()
