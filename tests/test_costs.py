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
