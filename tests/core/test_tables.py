"""Run tables: one markdown table and one per-seed formatter."""

from devicelab.core.tables import format_per_seed, markdown_table


def test_per_seed_mean_std_and_count():
    assert format_per_seed([96.5, 96.7]) == "96.60 ± 0.14 (n=2)"
    assert format_per_seed(96.6) == "96.60"
    assert format_per_seed([0.4, 0.2], 2, sign=True, n=False) == "+0.30 ± 0.14"
    assert format_per_seed([0.5], 1, scale=100) == "50.0 ± 0.0 (n=1)"


def test_markdown_table_columns_floats_and_missing_cells():
    table = markdown_table([{"model": "ssn", "acc": 96.123456}, {"model": "bn", "acc": None}])
    assert table.splitlines() == ["| model | acc |", "|---|---|", "| ssn | 96.12 |", "| bn | – |"]
    assert markdown_table([]) == ""
    assert markdown_table([{"a": 1, "b": 2}], columns=["b"]).splitlines()[2] == "| 2 |"
