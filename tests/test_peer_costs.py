"""`mbv1 profile --peers`: comparison models counted from their public definitions."""

from __future__ import annotations

from mbv1.peer_costs import PEERS, peer_rows


def test_squeezenet_and_alexnet_counted_from_torchvision():
    rows = {(p.model, r.quantity): r for p, rs in peer_rows(("Squeezenet", "AlexNet")) for r in rs}
    sq = rows[("Squeezenet", "mult-adds")]
    assert round(sq.mbv1, 1) == 818.9 and sq.paper == 1700 and "FLOPs" in sq.note
    assert rows[("Squeezenet", "params")].mbv1 == 1.248424 and rows[("Squeezenet", "params")].ok
    assert round(rows[("AlexNet", "params")].mbv1, 2) == 61.10
    assert round(rows[("AlexNet", "mult-adds")].mbv1, 1) == 714.2


def test_every_peer_names_its_tables_definition_and_reason():
    assert {p.table for p in PEERS} == {"Table 8", "Table 9", "Table 10", "Table 11", "Table 13",
                                        "Table 14"}
    assert all(p.note for p in PEERS)
    assert [p.model for p in PEERS if p.build is None] == [
        "SSD 300 Inception V2", "Faster-RCNN 300/600 VGG", "Faster-RCNN 300/600 Inception V2"]
