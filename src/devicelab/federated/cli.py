"""``devicelab fed ...``: run a federated experiment as separate processes over the network.

    devicelab fed certs --out certs --san 10.0.0.5          # private CA + server certificate (TLS)
    devicelab fed superlink --home fl --host 10.0.0.5 --port 9300 --certs certs
    devicelab fed supernode --home fl --superlink 10.0.0.5:9300 --partition-id 0 --num-partitions 2 \\
        --root-certificates certs/ca.crt --set "data-root='/data/pacs'"
    devicelab fed app fl/app --task devicelab.methods.fed_dg.federated_task:make_task --num-partitions 2 \\
        --set held-out=sketch --set profile=smoke
    devicelab fed submit fl/app --home fl                   # exit code 0 only when the run reports ok
    devicelab fed stop --home fl                            # SIGTERM/SIGKILL by recorded PID only

Defaults bind 127.0.0.1 and run without TLS; a non-loopback ``--host`` needs ``--certs`` (or
``--allow-insecure-network``). See ``docs/federated.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import sys
from pathlib import Path

import yaml


def _kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"devicelab fed: bad --set {item!r}: expected key=value")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def _address(value: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` checked: a port in 1..65535 and a host name that resolves (no endless retries later)."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{option} {value}: expected HOST:PORT with a port in 1..65535")
    try:
        socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(f"{option} {value}: cannot resolve host {host!r} ({e.strerror or e})") from None
    return host, int(port)


def _partition(partition_id: int, num_partitions: int) -> None:
    if num_partitions < 1:
        raise ValueError(f"--num-partitions {num_partitions}: expected at least 1")
    if not 0 <= partition_id < num_partitions:
        raise ValueError(
            f"--partition-id {partition_id}: expected 0 .. {num_partitions - 1} "
            f"(--num-partitions {num_partitions})"
        )


def _task(spec: str) -> str:
    """``module:function`` that imports and is callable, checked before an App folder is written."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"--task {spec}: expected module:function")
    try:
        target = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ValueError(f"--task {spec}: cannot import module {module!r} ({e})") from None
    except AttributeError:
        raise ValueError(f"--task {spec}: module {module!r} has no {name!r}") from None
    if not callable(target):
        raise ValueError(f"--task {spec}: {name!r} is not callable")
    return spec


def _examples() -> str:
    """The usage lines of this module's docstring, as plain text for ``--help``."""
    usage = __doc__.split("\n\n")[1]
    return f"examples:\n{usage}\n\nDefaults bind 127.0.0.1 without TLS; see docs/federated.md."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="devicelab fed",
        description="Run a federated experiment as separate processes over the network: a SuperLink, "
        "SuperNodes and a Flower App.",
        epilog=_examples(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", required=True)

    c = sub.add_parser("certs", help="make a private CA and a server certificate for TLS")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--san", action="append", required=True, help="address SuperNodes use (IP or DNS name)")
    c.add_argument("--days", type=int, default=365)

    s = sub.add_parser("superlink", help="start a SuperLink (run-time installs disabled)")
    s.add_argument("--home", type=Path, required=True, help="FLWR_HOME: state, logs, PID files, config.toml")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0: a free port")
    s.add_argument("--certs", type=Path, help="folder from `devicelab fed certs` (enables TLS)")
    s.add_argument("--allow-insecure-network", action="store_true")
    s.add_argument("--simulation", action="store_true", help="run the federation as a Ray simulation")
    s.add_argument("--wait-s", type=float, default=60.0)

    n = sub.add_parser("supernode", help="start a SuperNode serving one partition")
    n.add_argument("--home", type=Path, required=True)
    n.add_argument("--superlink", required=True, help="HOST:PORT of the SuperLink")
    n.add_argument("--partition-id", type=int, required=True)
    n.add_argument("--num-partitions", type=int, required=True)
    n.add_argument("--port", type=int, default=0, help="ClientApp runtime API port on 127.0.0.1 (0: free)")
    n.add_argument("--root-certificates", type=Path, help="ca.crt; without it the connection is insecure")
    n.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra node config")

    a = sub.add_parser("app", help="write a Flower App folder for a devicelab task")
    a.add_argument("app_dir", type=Path)
    a.add_argument("--task", required=True, help="module:function returning (algorithm, data_fn)")
    a.add_argument("--num-partitions", type=int, required=True)
    a.add_argument("--num-rounds", type=int, default=0, help="0: the algorithm's own schedule")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--run-dir", default="", help="folder on the server host for result.json")
    a.add_argument("--stages", default="train", help="comma-separated stages (fed-dg: train,ifa)")
    a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra run config")

    u = sub.add_parser("submit", help="flwr run the app on the SuperLink; exit 0 only if the result is ok")
    u.add_argument("app_dir", type=Path)
    u.add_argument("--home", type=Path, required=True)
    u.add_argument("--timeout-s", type=float, default=600.0)

    t = sub.add_parser("stop", help="stop every process recorded under --home (by PID)")
    t.add_argument("--home", type=Path, required=True)
    t.add_argument("--grace-s", type=float, default=10.0)

    st = sub.add_parser("status", help="list the recorded processes and whether they run")
    st.add_argument("--home", type=Path, required=True)
    return p


def fed_command(argv: list[str]) -> int:
    """Entry point of ``devicelab fed``; returns the exit code."""
    args = build_parser().parse_args(argv)
    from devicelab.core.stages import pid_alive
    from devicelab.federated import deploy

    try:
        if args.action == "certs":
            paths = deploy.make_certs(args.out, args.san, args.days)
            print(
                f"CA: {paths.ca_cert}\nserver certificate: {paths.server_cert}\n"
                f"server key: {paths.server_key}"
            )
        elif args.action == "superlink":
            certs = None
            if args.certs:
                certs = deploy.CertPaths(
                    args.certs / "ca.crt", args.certs / "server.pem", args.certs / "server.key"
                )
                missing = [
                    str(p) for p in (certs.ca_cert, certs.server_cert, certs.server_key) if not p.exists()
                ]
                if missing:
                    print(
                        f"devicelab fed superlink: missing TLS file(s): {', '.join(missing)}", file=sys.stderr
                    )
                    return 2
            pid, port = deploy.start_superlink(
                args.home,
                host=args.host,
                port=args.port or None,
                certs=certs,
                allow_insecure_network=args.allow_insecure_network,
                simulation=args.simulation,
            )
            connect = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
            deploy.wait_for_port(connect, port, args.wait_s, pid)
            print(f"superlink PID {pid} on {args.host}:{port} (FLWR_HOME={args.home})")
        elif args.action == "supernode":
            _partition(args.partition_id, args.num_partitions)
            _address(args.superlink, "--superlink")
            pid = deploy.start_supernode(
                args.home,
                args.superlink,
                args.partition_id,
                args.num_partitions,
                port=args.port or None,
                root_certificates=args.root_certificates,
                node_config=_kv(args.set),
            )
            print(f"supernode {args.partition_id} PID {pid}")
        elif args.action == "app":
            _partition(0, args.num_partitions)
            _task(args.task)
            run_config = {
                "num-partitions": args.num_partitions,
                "num-rounds": args.num_rounds,
                "seed": args.seed,
                "run-dir": args.run_dir,
                **_kv(args.set),
            }
            path = deploy.write_app(args.app_dir, args.task, run_config, tuple(args.stages.split(",")))
            print(f"Flower App written to {path}")
        elif args.action == "submit":
            rc, result, text = deploy.submit(args.app_dir, args.home, timeout_s=args.timeout_s)
            if result is None:
                sys.stderr.write(text[-4000:])
                print(
                    "devicelab fed submit: no devicelab-result line (the ServerApp failed or timed out)",
                    file=sys.stderr,
                )
            else:
                print(json.dumps(result, indent=2))
            return rc
        elif args.action == "stop":
            for name, what in deploy.stop(args.home, args.grace_s).items():
                print(f"{name}: {what}")
        elif args.action == "status":
            for name, pid in deploy.recorded_pids(args.home).items():
                print(f"{name}: PID {pid} {'running' if pid_alive(pid) else 'not running'}")
    except (deploy.DeployError, ValueError, FileNotFoundError) as e:
        print(f"devicelab fed {args.action}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(fed_command(sys.argv[1:]))
