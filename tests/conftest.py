"""Every test gets its own data cache, run and report folders, so nothing touches the user's."""

import os

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("devicelab")
    monkeypatch.setenv("DEVICELAB_RUNS", str(base / "runs"))
    monkeypatch.setenv("DEVICELAB_REPORTS", str(base / "reports"))
    if "DEVICELAB_DATA_SHARED" not in os.environ:  # corpora built by one test are reused by the next
        monkeypatch.setenv("DEVICELAB_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))
