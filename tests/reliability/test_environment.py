"""Environment variables: a bad folder is named by its variable, and leaves no run folder behind."""

from __future__ import annotations

from .conftest import cli, devicelab, one_line_error, run_folders


def test_unusable_data_cache_names_devicelab_data():
    result = devicelab("run", "kws-ssn", "--profile", "smoke", DEVICELAB_DATA="/proc/x")
    one_line_error(result, "DEVICELAB_DATA=/proc/x", "set DEVICELAB_DATA to a writable folder")
    assert run_folders("kws-ssn") == []  # no orphan run folder


def test_data_cache_that_is_a_file_names_devicelab_data(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = cli("data", "build", "synth-commands", "--profile", "smoke", DEVICELAB_DATA=str(not_a_folder))
    one_line_error(result, f"DEVICELAB_DATA={not_a_folder}")


def test_unusable_runs_folder_names_devicelab_runs():
    result = cli("run", "toy", "--profile", "smoke", toy=True, DEVICELAB_RUNS="/proc/runs")
    one_line_error(result, "DEVICELAB_RUNS=/proc/runs")


def test_unknown_plugin_module_is_named():
    result = cli("list", DEVICELAB_PLUGINS="no_such_plugin_module")
    one_line_error(result, "DEVICELAB_PLUGINS=no_such_plugin_module", "cannot import no_such_plugin_module")
