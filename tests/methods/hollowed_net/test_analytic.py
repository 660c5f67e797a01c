"""Spec §7: what each depth removes from SD-1.5, counted on the meta device from the public config."""

from __future__ import annotations

from devicelab.methods.hollowed_net.analytic import format_hollow_table, hollow_table


def test_sd15_hollow_table_matches_the_spec():
    rows = {r["m"]: r for r in hollow_table(depths=[0, 3, 6, 9])}
    assert rows[0]["params_total"] == 859_520_964  # 859.5 M
    assert [rows[m]["layers_hollowed"] for m in (0, 3, 6, 9)] == [1, 7, 13, 19]
    assert rows[0]["params_hollowed"] == 97_038_080  # 11.3 %
    assert rows[3]["params_hollowed"] == 336_303_360  # 39.1 %
    assert rows[6]["params_hollowed"] == 723_566_720  # 84.2 %; 135.95 M stay resident
    assert [rows[m]["projections_hollowed"] for m in (0, 3, 6, 9)] == [8, 8, 48, 88]
    assert round(rows[6]["projection_weight_fraction"], 3) == 0.757
    assert [rows[m]["a_m_shape"] for m in (0, 3, 6, 9)] == [
        "1280×8×8",
        "1280×16×16",
        "1280×32×32",
        "640×64×64",
    ]
    assert rows[6]["a_m_bytes"] == 1280 * 32 * 32 * 2  # fp16, 2.6 MB
    assert "84.2%" in format_hollow_table([rows[6]])
