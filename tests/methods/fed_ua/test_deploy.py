"""FedUA deployed: 1 SuperLink + 2 SuperNodes as separate processes on 127.0.0.1 with TLS, 2 training rounds
and the warm-up through `devicelab fed submit`; every process stopped by PID (also when the test fails)."""

import json

import psutil
import pytest

from devicelab.federated import deploy
from devicelab.federated.cli import fed_command

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


def test_fedua_rounds_and_warmup_over_the_network(tmp_path, capsys):
    home, certs = tmp_path / "fl", tmp_path / "certs"
    seen = []
    try:
        assert fed_command(["certs", "--out", str(certs), "--san", "127.0.0.1"]) == 0
        assert fed_command(["superlink", "--home", str(home), "--certs", str(certs)]) == 0
        port = int((home / "config.toml").read_text().split('address = "127.0.0.1:')[1].split('"')[0])
        for pid in (0, 1):
            argv = ["supernode", "--home", str(home), "--superlink", f"127.0.0.1:{port}"]
            argv += ["--partition-id", str(pid), "--num-partitions", "2"]
            argv += ["--root-certificates", str(certs / "ca.crt")]
            assert fed_command(argv) == 0
        app = tmp_path / "app"
        overrides = json.dumps({"rounds": 2, "fraction": 1.0, "channels": 8, "embed_dim": 8})
        assert (
            fed_command(
                [
                    "app",
                    str(app),
                    "--task",
                    "devicelab.methods.fed_ua.federated_task:make_task",
                    "--num-partitions",
                    "2",
                    "--stages",
                    "train,warmup",
                    "--run-dir",
                    str(tmp_path / "result"),
                    "--set",
                    "profile=smoke",
                    "--set",
                    f"overrides={overrides}",
                ]  # fmt: skip
            )
            == 0
        )
        capsys.readouterr()
        rc = fed_command(["submit", str(app), "--home", str(home), "--timeout-s", "400"])
        out = capsys.readouterr()
        assert rc == 0, out.err[-3000:]
        result = json.loads(out.out)
        assert result["status"] == "ok" and result["num_rounds"] == 3
        assert result["failures"] == {"failed": 0, "missing": 0, "rejected": 0}
        saved = json.loads((tmp_path / "result" / "result.json").read_text())
        assert [r["stage"] for r in saved["rounds"]] == ["train", "train", "warmup"]
        assert [r["ok"] for r in saved["rounds"]] == [[0, 1]] * 3
        assert saved["rounds"][-1]["metrics"]["warmup-tpr"] >= 0.9
        seen = [p for pid in deploy.recorded_pids(home).values() for p in _family(pid)]
        listening = [c.laddr for p in seen for c in _listening(p)]
        assert listening and all(a.ip in ("127.0.0.1", "::1") for a in listening), listening
    finally:
        seen += [p for pid in deploy.recorded_pids(home).values() for p in _family(pid)]
        fed_command(["stop", "--home", str(home), "--grace-s", "10"])
    _, alive = psutil.wait_procs(seen, timeout=10)
    assert not alive, f"processes outlived teardown: {alive}"


def _family(pid):
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _listening(p):
    try:
        return [c for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
