"""Deployment on loopback: 1 SuperLink + 2 SuperNodes as separate processes, TLS with generated
certificates, a 2-round job through `devicelab fed submit`, a failing ServerApp that makes submit exit
non-zero, and teardown of every process by PID (also when the test fails)."""

import json

import psutil
import pytest

from devicelab.federated import deploy
from devicelab.federated.cli import fed_command

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


def family(pids):
    """The recorded processes and all their descendants."""
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return procs


def listening(procs):
    out = []
    for p in procs:
        try:
            out += [c.laddr for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def test_two_round_job_over_the_network(tmp_path, capsys):
    home = tmp_path / "fl"
    seen = []
    try:
        assert fed_command(["certs", "--out", str(tmp_path / "certs"), "--san", "127.0.0.1"]) == 0
        assert fed_command(["superlink", "--home", str(home), "--certs", str(tmp_path / "certs")]) == 0
        toml = (home / "config.toml").read_text()
        port = int(toml.split('address = "127.0.0.1:')[1].split('"')[0])
        for pid in (0, 1):
            assert (
                fed_command(
                    [
                        "supernode",
                        "--home",
                        str(home),
                        "--superlink",
                        f"127.0.0.1:{port}",
                        "--partition-id",
                        str(pid),
                        "--num-partitions",
                        "2",
                        "--root-certificates",
                        str(tmp_path / "certs" / "ca.crt"),
                    ]
                )
                == 0
            )
        app = tmp_path / "app"
        assert (
            fed_command(
                [
                    "app",
                    str(app),
                    "--task",
                    "devicelab.federated.toy:make_task",
                    "--num-partitions",
                    "2",
                    "--num-rounds",
                    "2",
                    "--stages",
                    "train,bias",
                    "--run-dir",
                    str(tmp_path / "result"),
                    "--set",
                    "train-rounds=1",
                ]
            )
            == 0
        )
        capsys.readouterr()
        rc = fed_command(["submit", str(app), "--home", str(home), "--timeout-s", "240"])
        out = capsys.readouterr()
        assert rc == 0, out.err[-3000:]
        result = json.loads(out.out)
        assert result["status"] == "ok" and result["num_rounds"] == 2
        assert result["failures"] == {"failed": 0, "missing": 0, "rejected": 0}
        saved = json.loads((tmp_path / "result" / "result.json").read_text())
        assert [r["stage"] for r in saved["rounds"]] == ["train", "bias"]
        assert [r["ok"] for r in saved["rounds"]] == [[0, 1], [0, 1]]

        recorded = deploy.recorded_pids(home)
        assert set(recorded) == {"superlink", "supernode-0", "supernode-1"}
        seen = family(recorded.values())
        addresses = listening(seen)
        assert addresses, "no listening socket found"
        assert all(a.ip in ("127.0.0.1", "::1") for a in addresses), addresses
        superlink_argv = json.loads((home / "pids" / "superlink.pid").read_text().splitlines()[1])
        assert (
            "--disable-runtime-dependency-installation" in superlink_argv
            and "--insecure" not in superlink_argv
        )

        failing = tmp_path / "failing-app"
        assert (
            fed_command(
                [
                    "app",
                    str(failing),
                    "--task",
                    "devicelab.federated.toy:make_task",
                    "--num-partitions",
                    "2",
                    "--set",
                    "fail=true",
                ]
            )
            == 0
        )
        assert fed_command(["submit", str(failing), "--home", str(home), "--timeout-s", "120"]) != 0
    finally:
        seen += family(deploy.recorded_pids(home).values())
        fed_command(["stop", "--home", str(home), "--grace-s", "10"])
    gone, alive = psutil.wait_procs(seen, timeout=10)
    assert not alive, f"processes outlived teardown: {alive}"
    assert deploy.recorded_pids(home) == {}


def test_insecure_non_loopback_is_refused(tmp_path, capsys):
    assert fed_command(["superlink", "--home", str(tmp_path), "--host", "0.0.0.0"]) == 2
    assert "TLS" in capsys.readouterr().err
    assert deploy.recorded_pids(tmp_path) == {}
