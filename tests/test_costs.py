"""Costs counted from the modules against the paper's tables (paper.md, Tables 2–10)."""

import pytest

from mbv1 import paper
from mbv1.backbone import MobileNetV1
from mbv1.backbone.costs import count_costs
from mbv1.profile import paper_rows


@pytest.mark.parametrize("key,expected", sorted(paper.ANALYTIC.items()))
def test_exact_analytic_counts(key, expected):
    alpha, resolution, variant = key
    params, madds_m = expected
    c = count_costs(MobileNetV1(alpha, variant=variant), resolution)
    assert c.params == params
    assert round(c.mult_adds / 1e6, 1) == madds_m


def test_every_paper_figure_agrees():
    rows = paper_rows()
    bad = [(r.table, r.model, r.quantity, r.paper, r.mbv1) for r in rows if not r.ok]
    assert not bad
    assert len(rows) >= 44


def test_table2_shares():
    c = count_costs(MobileNetV1(), 224)
    for kind, (madds_pct, params_pct) in paper.TABLE2.items():
        ours_m, ours_p = c.share(kind)
        assert abs(ours_p - params_pct) <= 0.1
        expected = paper.TABLE2_CORRECTED.get(kind, madds_pct)
        assert abs(ours_m - expected) <= 0.1, kind
    assert sum(c.share(k)[0] for k in c.by_type) == pytest.approx(100)


def test_ablations():
    full = count_costs(MobileNetV1(variant="full"), 224)
    assert full.mult_adds / 1e6 == pytest.approx(4866, rel=5e-3)
    assert full.params / 1e6 == pytest.approx(29.3, rel=5e-3)
    shallow = count_costs(MobileNetV1(variant="shallow"), 224)
    assert shallow.mult_adds / 1e6 == pytest.approx(307, rel=5e-3)


def test_separable_cost_ratio():
    """Depthwise separable / standard = 1/N + 1/D_K² (section 3.1)."""
    from mbv1.backbone.layers import ConvBNAct, DepthwiseSeparable

    std = count_costs(ConvBNAct(512, 512, 3), 14, in_channels=512).mult_adds
    sep = count_costs(DepthwiseSeparable(512, 512, 1), 14, in_channels=512).mult_adds
    assert sep / std == pytest.approx(1 / 512 + 1 / 9)


# -- MobileNetV2: TF-slim's checkpoint table, MobileNetV2 Table 6's SSDLite rows ----------------

def test_v2_table_agrees_row_by_row():
    """TF-slim's 22 MobileNetV2 rows: MACs (truncated to whole millions there) and params as
    conv + FC weights (paper.QUIRKS["v2_slim_counts"])."""
    from mbv1.profile import v2_rows

    assert {(a, r) for a, r, *_ in paper.V2_SLIM} == (
        {(1.4, 224), (1.3, 224)} | {(a, r) for a in (1.0, 0.75, 0.5, 0.35)
                                    for r in (224, 192, 160, 128, 96)})
    rows = v2_rows()
    assert len(rows) == 44
    bad = [(r.model, r.quantity, r.paper, r.mbv1) for r in rows if not r.ok]
    assert not bad
    for r in rows:
        if r.quantity == "params":  # weights to the printed 0.01 M, every row
            assert round(r.mbv1, 2) == r.paper, r.model
        else:  # MACs: TF-slim truncates
            assert int(r.mbv1) == r.paper, r.model


@pytest.mark.parametrize("alpha,resolution,weights,params,madds", [
    (1.0, 224, 3_469_760, 3_504_872, 300_774_272),
    (1.4, 224, 6_059_840, 6_108_776, 582_195_824),
    (0.5, 160, 1_949_136, 1_968_680, 50_184_000),
])
def test_v2_exact_counts(alpha, resolution, weights, params, madds):
    from mbv1.profile import body_costs

    c = body_costs("mobilenet_v2", alpha, resolution)
    assert (c.weights, c.params, c.mult_adds) == (weights, params, madds)


def test_v2_custom_setting_and_errors():
    from mbv1.errors import MBV1Error
    from mbv1.profile import custom_rows

    costs, rows = custom_rows(0.5, 160, body="mobilenet_v2")
    assert [(r.model, r.quantity) for r in rows] == [("mobilenet_v2_0.5_160", "mult-adds"),
                                                     ("mobilenet_v2_0.5_160", "params")]
    assert all(r.ok for r in rows) and costs.mult_adds == 50_184_000
    costs, rows = custom_rows(0.6, 200, body="mobilenet_v2")  # no published row: costs only
    assert not rows and costs.mult_adds > 0
    _, v1 = custom_rows(0.5, 160)  # MobileNetV1 keeps its own paper row
    assert [r.table for r in v1] == ["Table 9", "Table 9"]
    with pytest.raises(MBV1Error, match="separable"):
        custom_rows(1.0, 224, "shallow", body="mobilenet_v2")


def test_ssdlite_rows_within_one_percent():
    """MobileNetV2 Table 6 at 320x320 with COCO's 80 classes (+ background): params within 1%
    counted either way (all trainable, or weights only); mult-adds at the printed 0.1 B. The
    90-id label map misses the params (paper.QUIRKS["v2_table6_classes"])."""
    from mbv1.detection.costs import detection_cost_rows, ssdlite_costs, ssdlite_rows

    rows = ssdlite_rows()
    assert len(rows) == 4 and all(r.ok for r in rows)
    assert {r.table for r in detection_cost_rows()} >= {"Table 13", paper.V2_TABLE6_NAME}
    published = {r.backbone: r for r in paper.V2_TABLE6 if r.alpha is not None}
    assert {b: (r.params_m, r.mult_adds_m) for b, r in published.items()} == {
        "mobilenet_v1": (5.1, 1300), "mobilenet_v2": (4.3, 800)}
    for backbone, r in published.items():
        c = ssdlite_costs(backbone, 80)
        assert c.params / 1e6 == pytest.approx(r.params_m, rel=0.01), backbone
        assert c.weights / 1e6 == pytest.approx(r.params_m, rel=0.01), backbone
        assert round(c.mult_adds / 1e9, 1) == r.mult_adds_m / 1000, backbone
    assert ssdlite_costs("mobilenet_v2", 90).params / 1e6 > 4.3 * 1.04


def test_profile_body_mobilenet_v2_cli():
    import json
    import subprocess
    import sys

    from typer.testing import CliRunner

    from mbv1.cli.main import app

    r = CliRunner().invoke(app, ["profile", "--body", "mobilenet_v2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["all_ok"] and len(out["rows"]) == 48
    r = CliRunner().invoke(app, ["profile", "--body", "mobilenet_v2", "--alpha", "0.5",
                                 "--resolution", "160"])
    assert r.exit_code == 0 and "MobileNetV2 α=0.5 at 160px" in r.stdout
    assert "mobilenet_v2_0.5_160" in r.stdout and "Conv 1x1" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mbv1", "profile", "--body", "mobilenet_v2",
                        "--variant", "full", "--alpha", "1"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 2 and "separable" in r.stderr and "Traceback" not in r.stderr
