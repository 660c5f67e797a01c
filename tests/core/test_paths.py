"""Paths written into notes and reports name no machine: the data cache by its variable, the rest relative."""

from pathlib import Path

from devicelab.core.paths import portable_path


def test_data_cache_is_named_by_its_variable_and_the_working_folder_is_relative(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "cache" / "tiny-sd" / "quick") == "$DEVICELAB_DATA/tiny-sd/quick"
    assert portable_path(tmp_path / "runs" / "x") == "runs/x"
    assert portable_path(Path("/opt/model")) == "/opt/model"  # outside both: kept as given
