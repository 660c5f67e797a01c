"""The ``devicelab`` command: list, data, run, reproduce, report, export, bench, personalize, fed.

Every subcommand has ``--help``. Errors are one line on stderr that names the bad name, key or file, and
exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devicelab import __version__, experiments
from devicelab.core.claims import ITEMS_SUFFIX
from devicelab.core.config import (
    PROFILE_NAMES,
    ConfigError,
    load_config_yaml,
    parse_overrides,
    resolve_config,
    to_dict,
)
from devicelab.core.tables import format_per_seed

# Flower and Ray read these at import time (specs/flower.md); set them before anything imports flwr or ray.
for _key, _value in {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "HF_HUB_OFFLINE": "1",
}.items():
    os.environ.setdefault(_key, _value)

# subcommands whose argument parsing lives with the code they run
DELEGATED = {
    "personalize": (
        "devicelab.methods.hollowed_net.cli",
        "personalize_command",
        "fine-tune a diffusers text-to-image model on a few images with Hollowed Net LoRA",
    ),
    "fed": (
        "devicelab.federated.cli",
        "fed_command",
        "run federated experiments as separate processes (SuperLink, SuperNodes)",
    ),
}


RAY_HELP = (
    "run the stages on a Ray cluster at ADDRESS (its workers must see the run folder), "
    "or `local` for a private instance on 127.0.0.1"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="devicelab",
        description="Faithful, tested implementations of methods for efficient, private and adaptive "
        "on-device learning.",
    )
    p.add_argument("--version", action="version", version=f"devicelab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="the nine experiments: paper, profiles, implemented or not")

    data = sub.add_parser("data", help="build and inspect the offline corpora")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dsub.add_parser("list", help="the corpora and which profiles are built")
    b = dsub.add_parser(
        "build",
        help="build a corpus or a trained artefact (tiny-sd, glyph-world-evaluators) into $DEVICELAB_DATA",
    )
    b.add_argument("name")
    b.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="build worker processes (default: the cores)"
    )
    b.add_argument("--extras", default="", help="comma-separated extras (e.g. mbrola,0ad,wallpapers)")
    b.add_argument("--force", action="store_true", help="rebuild even if built")
    for action, text in (
        ("info", "the manifest summary of a built corpus"),
        ("verify", "re-hash every file of a built corpus"),
        ("sources", "the Debian packages a build would fetch (fetches nothing)"),
    ):
        a = dsub.add_parser(action, help=text)
        a.add_argument("name")
        if action == "sources":
            a.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
            a.add_argument("--extras", default="")
        else:
            a.add_argument(
                "--profile",
                default=None,
                choices=PROFILE_NAMES,
                help="default: the built profile (quick first)",
            )

    r = sub.add_parser("run", help="run one experiment: method and baselines side by side, then its claims")
    r.add_argument("name", help="experiment name (see `devicelab list`)")
    r.add_argument("--profile", default=None, choices=PROFILE_NAMES, help="default: quick")
    r.add_argument("--data", type=Path, default=None, help="root of the paper's real data set")
    r.add_argument("--seed", type=int, default=None, help="base seed (config key `seed`)")
    r.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="RUN_DIR",
        help="continue the latest unfinished run (or RUN_DIR) from its checkpoints",
    )
    r.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (dotted keys)")
    r.add_argument(
        "--skip-bad",
        action="store_true",
        help="drop unreadable, empty or non-finite input files instead of stopping (listed in a note)",
    )
    r.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)

    rep = sub.add_parser("reproduce", help="run every experiment and write reports/<profile>/REPORT.md")
    rep.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    rep.add_argument("--only", nargs="+", default=None, metavar="NAME")
    rep.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)

    rr = sub.add_parser(
        "report",
        help="render REPORT.md from existing runs, claims re-evaluated (beside the runs, or --out)",
        description="Render REPORT.md from the latest finished run of each experiment, with every claim "
        "re-evaluated from the stored metrics (interval, floors, verdict). Writes to "
        "<runs>/_report/<profile>/ unless --out is given; unreadable runs are skipped and listed.",
    )
    rr.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    rr.add_argument(
        "--runs", type=Path, default=None, help="run folders to read (default: $DEVICELAB_RUNS or ./runs)"
    )
    rr.add_argument(
        "--out", type=Path, default=None, help="folder for REPORT.md (default: <runs>/_report/<profile>)"
    )
    rr.add_argument(
        "--archive",
        action="store_true",
        help="copy each run's metrics, config and plots to <out>/runs so the report can be re-rendered",
    )
    rr.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also replace the results block of this README with the claims",
    )

    e = sub.add_parser("export", help="export a trained run (ONNX model, or a LoRA adapter folder)")
    e.add_argument("name")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--onnx", type=Path, default=None, help="output .onnx path (classifiers)")
    e.add_argument(
        "--out", type=Path, default=None, help="output folder (hollowed-net: the diffusers LoRA adapter)"
    )
    e.add_argument(
        "--subject", default=None, help="hollowed-net: which subject's adapter (default: the first)"
    )
    e.add_argument(
        "--variant", default=None, help="which trained model (kws-ssn: ssn, bn, bn-wide; default ssn)"
    )
    e.add_argument(
        "--seed", type=int, default=None, help="the seed of that model (default: the run's base seed)"
    )
    e.add_argument(
        "--int8",
        action="store_true",
        help="also write an int8 copy beside the .onnx (NAME.int8.onnx): static, calibrated on training "
        "clips where the method gives them, else dynamic; the front end stays float32",
    )

    bn = sub.add_parser("bench", help="run the speed benchmarks; JSON under reports/<profile>/bench/")
    bn.add_argument("names", nargs="*", help="benchmarks to run (default: all; see `devicelab bench --list`)")
    bn.add_argument("--profile", default="quick", help="report folder: reports/<profile>/bench/")
    bn.add_argument("--quick", action="store_true", help="fewer rounds: a check that they run, not numbers")
    bn.add_argument("--list", action="store_true", help="list the benchmarks and exit")

    for name, (_, _, text) in DELEGATED.items():
        sub.add_parser(name, help=text + f" (see `devicelab {name} --help`)", add_help=False)
    return p


def _error(message: str) -> int:
    print(f"devicelab: error: {message}", file=sys.stderr)
    return 2


def _print_result(result: dict) -> None:
    print(f"\n{result['experiment']} ({result['profile']}) finished in {result['wall_time_s']:.1f} s")
    for table in result["tables"]:
        print("\n" + table)
    if not result["tables"]:
        for k, v in result["metrics"].items():
            if not k.endswith(ITEMS_SUFFIX):
                print(f"  {k:40s} {format_per_seed(v, 4)}")
    if result["claims"]:
        from devicelab.core.report import claim_summary

        print("\nclaims (mean, 95 % interval over seeds, n, margin → verdict):")
        for c in result["claims"]:
            print(claim_summary(c))
    for note in result["notes"]:
        print(f"note: {note}")


def cmd_list() -> int:
    print(f"{'experiment':16s} {'status':16s} {'profiles':18s} paper")
    for name in experiments.names():
        info = experiments.overview(name)
        status = "implemented" if info.implemented else "not implemented"
        print(f"{name:16s} {status:16s} {'smoke quick full':18s} {experiments.paper(name)}")
        if info.implemented:
            print(
                f"{'':16s} corpora: {', '.join(info.corpora) or '-'}; docs: {info.docs or '-'}; "
                f"headline: {', '.join(info.headline) or '-'}"
            )
    return 0


def _built_profile(name: str) -> str:
    """The profile of corpus ``name`` that ``data info`` / ``data verify`` read when none is given: quick if
    built, else the one built; an error lists what exists."""
    from devicelab.data import corpora
    from devicelab.data.cache import is_built

    corpora.get_builder(name)  # an unknown name lists the valid ones
    built = [p for p in PROFILE_NAMES if is_built(name, p)]
    if not built:
        raise FileNotFoundError(
            f"corpus {name!r} is not built for any profile; run `devicelab data build {name} --profile smoke`"
        )
    if "quick" in built or len(built) == 1:
        return "quick" if "quick" in built else built[0]
    raise ConfigError(f"corpus {name!r} is built for profiles {', '.join(built)}; choose one with --profile")


def _artefact_names() -> tuple[str, ...]:
    from devicelab.data.artefacts import ARTEFACTS

    return tuple(ARTEFACTS)


def cmd_data(args: argparse.Namespace) -> int:
    from devicelab.data import corpora
    from devicelab.data.cache import corpus_dir, is_built, read_manifest, verify_checksums

    if args.data_command == "list":
        from devicelab.data.artefacts import ARTEFACTS, is_artefact_built

        print(f"{'corpus':24s} {'builder':12s} built profiles")
        for name in corpora.CORPORA:
            built = [p for p in PROFILE_NAMES if is_built(name, p)]
            state = "yes" if corpora.is_available(name) else "not written"
            print(f"{name:24s} {state:12s} {' '.join(built) or '-'}")
        for name in ARTEFACTS:
            built = [p for p in PROFILE_NAMES if is_artefact_built(name, p)]
            print(f"{name:24s} {'artefact':12s} {' '.join(built) or '-'}")
        return 0
    if args.data_command == "build" and args.name in _artefact_names():
        from devicelab.data.artefacts import build_artefact

        build_artefact(args.name, args.profile, force=args.force)
        return 0
    if args.data_command == "build":
        extras = tuple(x for x in args.extras.split(",") if x)
        corpora.build_corpus(
            args.name, args.profile, seed=args.seed, workers=args.workers, extras=extras, force=args.force
        )
        return 0
    if args.data_command == "sources":
        builder = corpora.get_builder(args.name)
        for pkg in builder.sources(args.profile, tuple(x for x in args.extras.split(",") if x)):
            print(pkg)
        return 0
    if args.data_command in ("info", "verify") and args.profile is None:
        args.profile = _built_profile(args.name)
    if args.data_command == "info":
        manifest = read_manifest(args.name, args.profile)
        short = {k: v for k, v in manifest.items() if k not in ("sources",)}
        short["sources"] = len(manifest.get("sources", []))
        print(json.dumps(short, indent=2))
        return 0
    if args.data_command == "verify":
        read_manifest(args.name, args.profile)
        bad = verify_checksums(corpus_dir(args.name, args.profile))
        for line in bad:
            print(line)
        print(f"{args.name} ({args.profile}): {'OK' if not bad else f'{len(bad)} bad files'}")
        return 0 if not bad else 1
    raise AssertionError(args.data_command)


def cmd_run(args: argparse.Namespace) -> int:
    from devicelab.core.paths import runs_root
    from devicelab.core.run import execute, latest_run_dir, read_meta
    from devicelab.core.stages import executor_for

    experiment = experiments.get_experiment(args.name)
    overrides = parse_overrides(args.overrides)
    if args.resume is not None and "=" in args.resume:  # `--resume key=value`: the value is an override
        overrides.update(parse_overrides([args.resume]))
        args.resume = "latest"
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.resume is not None:
        if args.resume == "latest":
            run_dir = latest_run_dir(args.name, profile=args.profile, finished=False)
            if run_dir is None:
                raise FileNotFoundError(
                    f"no unfinished run of {args.name} to resume under {runs_root() / args.name} "
                    "(DEVICELAB_RUNS sets where runs live)"
                )
        else:
            run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").exists():
            raise FileNotFoundError(f"{run_dir / 'config.yaml'}: not a run folder")
        meta = read_meta(run_dir)
        if meta.get("experiment") not in (None, args.name):
            raise ConfigError(
                f"{run_dir} is a run of {meta['experiment']}, not {args.name}; "
                f"resume it with `devicelab run {meta['experiment']} --resume {run_dir}`"
            )
        if not meta.get("experiment") or not meta.get("profile"):
            raise FileNotFoundError(f"{run_dir / 'run.json'}: missing or unreadable; not a run folder")
        print(f"resuming {run_dir} (started {meta.get('started', '?')}, state {meta.get('state', '?')})")
        profile = meta["profile"]
        config = load_config_yaml(experiment.config_cls, run_dir / "config.yaml")
        if overrides and to_dict(resolve_config(experiment.config_cls, profile, overrides)) != to_dict(
            config
        ):
            raise ConfigError(
                f"{run_dir / 'config.yaml'}: overrides differ from the run's config; resume without overrides"
            )
        data = Path(meta["data_path"]) if meta.get("data_path") else None
        result = execute(
            experiment,
            config,
            profile,
            data_path=data,
            run_dir=run_dir,
            resume=True,
            executor=executor_for(args.ray),
            skip_bad=args.skip_bad,
        )
    else:
        profile = args.profile or "quick"
        config = resolve_config(experiment.config_cls, profile, overrides)
        if args.data is not None and not args.data.exists():
            raise FileNotFoundError(f"--data {args.data}: no such folder")
        result = execute(
            experiment,
            config,
            profile,
            data_path=args.data,
            executor=executor_for(args.ray),
            skip_bad=args.skip_bad,
        )
    _print_result(result)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from devicelab.core.paths import reports_root
    from devicelab.core.report import record_status, render
    from devicelab.core.run import execute, latest_run_dir
    from devicelab.core.stages import executor_for

    names = args.only or experiments.names()
    for name in names:
        if name not in experiments.names():
            raise ConfigError(f"unknown experiment {name!r}; valid names: {', '.join(experiments.names())}")
    failures = 0
    times: dict[str, float] = {}
    for name in names:
        if not experiments.is_implemented(name):
            print(f"== {name}: not implemented")
            record_status(args.profile, name, "not implemented")
            continue
        print(f"== {name} ({args.profile})")
        t0 = time.perf_counter()
        try:
            experiment = experiments.get_experiment(name)
            config = resolve_config(experiment.config_cls, args.profile)
            result = execute(experiment, config, args.profile, executor=executor_for(args.ray))
            _print_result(result)
            record_status(args.profile, name, "ok", run_dir=latest_run_dir(name, args.profile, finished=True))
        except Exception as e:  # one failing experiment must not hide the others' results
            failures += 1
            print(
                f"!! {name} failed after {time.perf_counter() - t0:.0f} s: {type(e).__name__}: {e}",
                file=sys.stderr,
            )
            record_status(args.profile, name, "failed", error=f"{type(e).__name__}: {e}")
        times[name] = time.perf_counter() - t0
    path = render(args.profile, out_dir=reports_root() / args.profile, archive=True)
    print("\nwall time: " + ", ".join(f"{n} {t / 60:.1f} min" for n, t in times.items()))
    print(f"total: {sum(times.values()) / 60:.1f} min")
    print(f"report: {path}")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module, function, _ = DELEGATED[argv[0]]
        try:
            command = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError:
            return _error(f"`devicelab {argv[0]}` is not available yet ({module} is not implemented)")
        return command(argv[1:])
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `run NAME --profile P key=value`: argparse leaves overrides after options unparsed
        if args.command != "run" or any("=" not in x or x.startswith("-") for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "data":
            return cmd_data(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "reproduce":
            return cmd_reproduce(args)
        if args.command == "report":
            from devicelab.core.report import render

            if args.runs is not None and not args.runs.is_dir():
                return _error(f"--runs {args.runs}: no such folder")
            print(
                render(
                    args.profile, out_dir=args.out, runs=args.runs, archive=args.archive, readme=args.readme
                )
            )
            return 0
        if args.command == "export":
            experiment = experiments.get_experiment(args.name)
            if experiment.export is None:
                return _error(f"experiment {args.name!r} has no export")
            if not (args.run_dir / "config.yaml").exists():
                return _error(f"{args.run_dir}: not a run folder (no config.yaml)")
            if args.onnx is None and args.out is None:
                return _error("export needs --onnx PATH or --out DIR")
            options = {
                "onnx": args.onnx,
                "out": args.out,
                "variant": args.variant,
                "seed": args.seed,
                "subject": args.subject,
            }
            path = experiment.export(args.run_dir, options) or args.onnx
            print(f"wrote {path} ({Path(path).stat().st_size / 1e3:.1f} kB)")
            if args.int8:
                from devicelab.core.onnx import export_int8

                int8, how = export_int8(args.name, args.run_dir, Path(path))
                print(f"wrote {int8} ({int8.stat().st_size / 1e3:.1f} kB, int8 {how})")
            return 0
        if args.command == "bench":
            from devicelab.core.bench import BENCHMARKS, run_benchmarks

            if args.list:
                for name, (script, text) in BENCHMARKS.items():
                    print(f"{name:14s} benchmarks/{script}: {text}")
                return 0
            run_benchmarks(args.names or list(BENCHMARKS), args.profile, quick=args.quick)
            return 0
    except (ConfigError, NotImplementedError, FileNotFoundError, FileExistsError) as e:
        return _error(str(e))
    except KeyboardInterrupt:
        print("devicelab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from devicelab.audio.io import AudioError
        from devicelab.core.checkpoint import CheckpointError
        from devicelab.core.experiment import QualityGateError
        from devicelab.core.onnx import ExportError
        from devicelab.core.training import NonFiniteLossError
        from devicelab.data.cache import BuildLockError, CorpusChangedError
        from devicelab.data.debs import MissingToolError, PackageError

        if isinstance(
            e,
            AudioError
            | MissingToolError
            | PackageError
            | CheckpointError
            | NonFiniteLossError
            | BuildLockError
            | CorpusChangedError
            | ExportError
            | QualityGateError,
        ):
            return _error(str(e))
        raise
    raise AssertionError(args.command)
