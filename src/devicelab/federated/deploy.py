"""Deployment: a SuperLink and SuperNodes as separate processes, a Flower App folder, submit, stop by PID.

Everything devicelab starts binds 127.0.0.1 unless the user names another address, runs with
``env.child_env()`` (no telemetry, no run-time installs), and is recorded in ``$FLWR_HOME/pids/`` so that
:func:`stop` ends exactly those processes (their process groups), never anything found by name
(``specs/flower.md`` §7, §8; TLS in ``docs/federated.md``).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devicelab.core.stages import die_with_parent, pid_alive
from devicelab.federated import env
from devicelab.federated.apps import RESULT_PREFIX

FEDERATION = "devicelab"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class DeployError(RuntimeError):
    """A deployment step failed; the message names the process, file or address."""


def _bin(name: str) -> str:
    """The Flower executable next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise DeployError(f"{name} not found (install flwr[simulation]>=1.42,<1.43 in this environment)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------------------
# TLS material


@dataclass(frozen=True)
class CertPaths:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_certs(out_dir: Path, san: list[str], days: int = 365) -> CertPaths:
    """A private CA and a server certificate whose subject alternative names are ``san`` (IPs or names).

    SuperNodes and the ``flwr`` CLI verify the server with ``ca.crt`` (``--root-certificates``); the
    SuperLink serves ``server.pem`` / ``server.key``. Keys are written with mode 0600.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not san:
        raise ValueError("make_certs: give at least one --san (the address SuperNodes use)")
    out_dir.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devicelab federated CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP384R1())
    names: list[x509.GeneralName] = []
    for entry in san:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, san[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = CertPaths(out_dir / "ca.crt", out_dir / "server.pem", out_dir / "server.key")
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(paths.server_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    return paths


# ----------------------------------------------------------------------------------------------------------
# Processes


def pid_dir(home: Path) -> Path:
    return Path(home) / "pids"


def check_host(host: str) -> None:
    """A ``--host`` to bind: it must resolve to an address of this machine; the error says which."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as e:
        raise DeployError(f"--host {host}: not a valid address or host name ({e.strerror or e})") from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((sockaddr[0], 0))
        except OSError as e:
            raise DeployError(f"--host {host}: not an address of this machine ({e.strerror or e})") from None


def _spawn(home: Path, name: str, argv: list[str], detach: bool = True) -> int:
    """Start ``argv`` with the devicelab environment; record its PID; log to logs/.

    ``detach``: a daemon in its own session that outlives the command that started it (``devicelab fed
    superlink``; ``devicelab fed stop`` ends it). Otherwise it leads its own process group and the kernel
    kills it when the starting process dies.
    """
    home = Path(home)
    pid_dir(home).mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    pid_file = pid_dir(home) / f"{name}.pid"
    if pid_file.exists() and pid_alive(int(pid_file.read_text().split()[0])):
        raise DeployError(f"{name} is already running (PID file {pid_file})")
    log = open(home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 -- handed to the child
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env.child_env({**os.environ, "FLWR_HOME": str(home)}),
        start_new_session=detach,
        preexec_fn=None if detach else _die_with(os.getpid()),
        cwd=home,
    )
    log.close()
    pid_file.write_text(f"{proc.pid}\n{json.dumps(argv)}\n")
    return proc.pid


def _die_with(parent_pid: int):
    """A ``preexec_fn`` that makes the child die with ``parent_pid`` (its own process group, parent-death
    signal)."""
    return lambda: die_with_parent(parent_pid)


def start_superlink(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    certs: CertPaths | None = None,
    allow_insecure_network: bool = False,
    simulation: bool = False,
    detach: bool = True,
) -> tuple[int, int]:
    """Start ``flower-superlink`` (run-time installs disabled, state in ``home/superlink.db``) and write
    ``home/config.toml`` for the ``flwr`` CLI; returns (PID, port).

    Without ``certs`` it runs ``--insecure``, which is refused on a non-loopback ``host`` unless
    ``allow_insecure_network``. ``detach=False`` makes it die with the calling process.
    """
    check_host(host)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    if certs is None and not is_loopback(host) and not allow_insecure_network:
        raise DeployError(
            f"--host {host} without TLS would expose the SuperLink unencrypted; give --certs DIR "
            "(see `devicelab fed certs`) or pass --allow-insecure-network"
        )
    port = port or free_port(host if is_loopback(host) else "0.0.0.0")
    argv = [
        _bin("flower-superlink"),
        "--host",
        host,
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
        "--database",
        str(home / "superlink.db"),
    ]
    if certs is None:
        argv.append("--insecure")
    else:
        argv += [
            "--ssl-ca-certfile",
            str(certs.ca_cert),
            "--ssl-certfile",
            str(certs.server_cert),
            "--ssl-keyfile",
            str(certs.server_key),
        ]
    if simulation:
        argv.append("--simulation")
    pid = _spawn(home, "superlink", argv, detach)
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    write_cli_config(home, f"{connect_host}:{port}", certs.ca_cert if certs else None)
    return pid, port


def write_cli_config(home: Path, address: str, root_certificates: Path | None = None) -> Path:
    """``$FLWR_HOME/config.toml`` naming the SuperLink at ``address`` as federation ``devicelab``."""
    lines = [
        "[superlink]",
        f'default = "{FEDERATION}"',
        "",
        f"[superlink.{FEDERATION}]",
        f'address = "{address}"',
    ]
    lines.append(f'root-certificates = "{root_certificates}"' if root_certificates else "insecure = true")
    path = Path(home) / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_supernode(
    home: Path,
    superlink: str,
    partition_id: int,
    num_partitions: int,
    *,
    port: int | None = None,
    root_certificates: Path | None = None,
    node_config: dict[str, Any] | None = None,
    name: str | None = None,
    detach: bool = True,
) -> int:
    """Start ``flower-supernode`` serving one partition; its ClientApp runtime API stays on 127.0.0.1.

    ``detach=False`` makes it die with the calling process.
    """
    cfg = {"partition-id": int(partition_id), "num-partitions": int(num_partitions), **(node_config or {})}
    node_cfg = " ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items())
    argv = [
        _bin("flower-supernode"),
        "--superlink",
        superlink,
        "--node-config",
        node_cfg,
        "--host",
        "127.0.0.1",
        "--port",
        str(port or free_port()),
        "--max-retries",
        "30",
        "--max-wait-time",
        "120",
    ]
    argv += ["--root-certificates", str(root_certificates)] if root_certificates else ["--insecure"]
    return _spawn(home, name or f"supernode-{partition_id}", argv, detach)


def wait_for_port(host: str, port: int, timeout_s: float = 60.0, pid: int | None = None) -> None:
    """Block until ``host:port`` accepts connections (or the process ``pid`` died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            raise DeployError(f"process {pid} exited before listening on {host}:{port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise DeployError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


def recorded_pids(home: Path) -> dict[str, int]:
    """The processes devicelab started under ``home`` (name -> PID)."""
    d = pid_dir(home)
    if not d.is_dir():
        return {}
    return {p.stem: int(p.read_text().split()[0]) for p in sorted(d.glob("*.pid"))}


def stop(home: Path, grace_s: float = 10.0) -> dict[str, str]:
    """SIGTERM each recorded process group, SIGKILL after ``grace_s``; remove the PID files.

    Only the PIDs in ``home/pids/`` (and the process groups they lead, which hold their ClientApp and
    ServerApp subprocesses) are signalled. Returns name -> "stopped" | "killed" | "not running".
    """
    out: dict[str, str] = {}
    pids = recorded_pids(home)
    for name, pid in pids.items():
        if not pid_alive(pid):
            out[name] = "not running"
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        out[name] = "stopped"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(pid_alive(p) for n, p in pids.items() if out[n] == "stopped"):
        time.sleep(0.2)
    for name, pid in pids.items():
        if out[name] == "stopped" and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            out[name] = "killed"
    for name, pid in pids.items():  # process groups may hold children that outlived their leader
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        (pid_dir(home) / f"{name}.pid").unlink(missing_ok=True)
    return out


# ----------------------------------------------------------------------------------------------------------
# The Flower App and submission

APP_PY = '''"""Flower App entry points for devicelab (written by `devicelab fed app`)."""

from devicelab.federated import tasks
from devicelab.federated.apps import make_client_app, make_server_app, write_result_sink

client_app = make_client_app(tasks.resolve_client, stages={stages!r})
server_app = make_server_app(tasks.resolve_server, write_result_sink)
'''


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))


def write_app(
    app_dir: Path, task: str, run_config: dict[str, Any], stages: tuple[str, ...] = ("train",)
) -> Path:
    """A Flower App folder: ``pyproject.toml`` (components, run config, **empty** dependencies) and ``app.py``
    importing the installed devicelab (same version on every host, checked by ``query.whoami``)."""
    app_dir = Path(app_dir)
    app_dir.mkdir(parents=True, exist_ok=True)
    config = {"task": task, **run_config}
    toml = [
        "[build-system]",
        'requires = ["hatchling"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        'name = "devicelab-fed-app"',
        'version = "1.0.0"',
        "dependencies = []",
        "",
        "[tool.hatch.build.targets.wheel]",
        'packages = ["."]',
        "",
        "[tool.flwr.app]",
        'publisher = "devicelab"',
        "",
        "[tool.flwr.app.components]",
        'serverapp = "app:server_app"',
        'clientapp = "app:client_app"',
        "",
        "[tool.flwr.app.config]",
        *(f"{k} = {_toml_value(v)}" for k, v in config.items()),
        "",
    ]
    (app_dir / "pyproject.toml").write_text("\n".join(toml))
    (app_dir / "app.py").write_text(APP_PY.format(stages=tuple(stages)))
    return app_dir


def submit(
    app_dir: Path, home: Path, *, timeout_s: float = 600.0, run_config: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any] | None, str]:
    """``flwr run APP devicelab --stream``; waits for the ``devicelab-result:`` line.

    Returns (exit code, result, log text). The exit code is 0 only when the line arrived with status
    ``ok``: ``flwr run`` itself exits 0 even when the ServerApp failed.
    """
    argv = [_bin("flwr"), "run", str(app_dir), FEDERATION, "--stream"]
    if run_config:
        argv += ["--run-config", " ".join(f"{k}={_toml_value(v)}" for k, v in run_config.items())]
    environ = env.child_env({**os.environ, "FLWR_HOME": str(home)})
    proc = subprocess.Popen(  # its own process group, killed by the kernel if this process dies
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environ,
        text=True,
        preexec_fn=_die_with(os.getpid()),
    )
    lines: list[str] = []
    result: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stdout is not None
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=1.0):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    break
                continue
            lines.append(line)
            if RESULT_PREFIX in line:
                result = json.loads(line.split(RESULT_PREFIX, 1)[1].strip())
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = "".join(lines)
    ok = result is not None and result.get("status") == "ok"
    return (0 if ok else 1), result, text
