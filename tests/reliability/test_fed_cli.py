"""``devicelab fed``: addresses, ids and tasks are checked before anything starts or is written."""

from __future__ import annotations

from .conftest import cli, one_line_error


def test_unresolvable_superlink_fails_instead_of_retrying(tmp_path):
    home = tmp_path / "fl"
    result = cli(
        "fed", "supernode", "--home", str(home), "--superlink", "no-such-host.invalid:9092",
        "--partition-id", "0", "--num-partitions", "2",
    )  # fmt: skip
    one_line_error(result, "--superlink no-such-host.invalid:9092", "cannot resolve host")
    assert not (home / "pids").exists()  # nothing was started


def test_superlink_without_port_is_rejected(tmp_path):
    result = cli(
        "fed", "supernode", "--home", str(tmp_path), "--superlink", "127.0.0.1",
        "--partition-id", "0", "--num-partitions", "1",
    )  # fmt: skip
    one_line_error(result, "expected HOST:PORT")


def test_partition_id_outside_the_partitions_is_rejected(tmp_path):
    result = cli(
        "fed", "supernode", "--home", str(tmp_path), "--superlink", "127.0.0.1:9092",
        "--partition-id", "5", "--num-partitions", "2",
    )  # fmt: skip
    one_line_error(result, "--partition-id 5", "0 .. 1")


def test_app_with_a_task_that_does_not_import_is_rejected(tmp_path):
    app = tmp_path / "app"
    result = cli("fed", "app", str(app), "--task", "no.such:thing", "--num-partitions", "2")
    one_line_error(result, "--task no.such:thing", "cannot import module 'no.such'")
    assert not app.exists()


def test_app_with_a_missing_function_is_rejected(tmp_path):
    result = cli(
        "fed",
        "app",
        str(tmp_path / "app"),
        "--task",
        "devicelab.federated.toy:nothing",
        "--num-partitions",
        "2",
    )
    one_line_error(result, "has no 'nothing'")


def test_host_that_is_not_this_machine_is_an_address_problem(tmp_path):
    result = cli("fed", "superlink", "--home", str(tmp_path / "fl"), "--host", "10.123.45.67")
    line = one_line_error(result, "--host 10.123.45.67", "not an address of this machine")
    assert "TLS" not in line and "certs" not in line


def test_host_that_is_not_an_address_at_all(tmp_path):
    result = cli("fed", "superlink", "--home", str(tmp_path / "fl"), "--host", "999.1.1.1")
    one_line_error(result, "--host 999.1.1.1", "not a valid address")


def test_fed_help_has_no_raw_markup():
    result = cli("fed", "--help")
    assert result.returncode == 0
    assert "``" not in result.stdout and "devicelab fed supernode" in result.stdout
