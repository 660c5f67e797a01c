"""``reports/<profile>/REPORT.md``: one row per paper (claim, method vs baseline, verdict, wall time, plots).

Rendered only from what runs wrote (``metrics.json``) and from the status ``devicelab reproduce`` records
for each experiment (ran, failed, not implemented). An experiment without a run never gets a number.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Any

from devicelab import experiments
from devicelab.core.bench import environment
from devicelab.core.claims import evaluate_claims, format_metric
from devicelab.core.config import ConfigError, resolve_config, to_dict
from devicelab.core.paths import reports_root, runs_root
from devicelab.core.run import latest_run_dir


def status_path(profile: str, name: str, root: Path | None = None) -> Path:
    return (root or reports_root()) / profile / "status" / f"{name}.json"


def record_status(profile: str, name: str, status: str, error: str = "", run_dir: Path | None = None) -> None:
    """Remember how ``devicelab reproduce`` ended for one experiment (ok, failed, not implemented)."""
    path = status_path(profile, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "status": status,
                "error": error,
                "run_dir": str(run_dir) if run_dir else None,
                "time": _dt.datetime.now().isoformat(timespec="seconds"),
            },
            indent=2,
        )
    )


def _fmt_value(x: float) -> str:
    return "–" if x != x else f"{x:.4g}"


def _claim_cell(claim: dict[str, Any]) -> str:
    note = f" ({claim['note']})" if claim.get("note") else ""
    return (
        f"**{claim['id']}** {claim['statement']}: {_fmt_value(claim['method'])} vs "
        f"{_fmt_value(claim['baseline'])} → {_fmt_value(claim['value'])} — **{claim['verdict']}**{note}"
    )


def collect(profile: str) -> list[dict[str, Any]]:
    """One record per registered experiment: its latest finished run of ``profile`` or why there is none."""
    rows = []
    for name in experiments.names():
        row: dict[str, Any] = {"name": name, "paper": experiments.paper(name), "status": "not run"}
        if not experiments.is_implemented(name):
            row["status"] = "not implemented"
        st = status_path(profile, name)
        status = json.loads(st.read_text()) if st.exists() else None
        run_dir = latest_run_dir(name, profile=profile, finished=True)
        if status and status["status"] == "failed":
            row.update(status="failed", error=status["error"])
        if run_dir is not None and row["status"] != "not implemented":
            result = json.loads((run_dir / "metrics.json").read_text())
            _refresh_claims(name, profile, result)
            result["overrides"] = _overrides(name, profile, run_dir)
            row.update(status="ran", run_dir=run_dir, result=result)
        rows.append(row)
    return rows


def _refresh_claims(name: str, profile: str, result: dict[str, Any]) -> None:
    """Evaluate the experiment's registered claims on the run's measured metrics (so a report always shows
    the current claim definitions; the numbers are never touched)."""
    try:
        experiment = experiments.get_experiment(name)
    except (ConfigError, NotImplementedError, ImportError):
        return
    result["claims"] = [c.to_dict() for c in evaluate_claims(experiment.claims, result["metrics"], profile)]


def _overrides(name: str, profile: str, run_dir: Path) -> dict[str, Any]:
    """The config keys where the run differs from the profile's defaults (flattened, dotted)."""
    import yaml

    try:
        experiment = experiments.get_experiment(name)
        default = to_dict(resolve_config(experiment.config_cls, profile))
    except (ConfigError, NotImplementedError, ImportError):
        return {}
    used = yaml.safe_load((run_dir / "config.yaml").read_text())

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    fu, fd = flat(used), flat(default)
    return {k: v for k, v in fu.items() if fd.get(k, object()) != v}


def render(profile: str, out_dir: Path | None = None) -> Path:
    """Write ``REPORT.md`` (and copy the plots beside it) from existing runs; returns its path."""
    out_dir = out_dir or reports_root() / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(profile)
    env = environment()
    gpu = f", GPU {env['gpu']}" if env["gpu"] else ""
    lines = [
        f"# devicelab results — profile `{profile}`",
        "",
        f"Rendered {_dt.datetime.now().isoformat(timespec='minutes')} from the runs under `{runs_root()}` on "
        f"{env['cpu']} ({env['cores']} cores{gpu}), torch {env['torch']}.",
        "Numbers come from the offline corpora unless a row names a data path; they compare methods within "
        "devicelab and are not comparable with the papers' published numbers.",
        "",
        "| paper | experiment | claims (method vs baseline → measured, verdict) | wall time | plots |",
        "|---|---|---|---|---|",
    ]
    details = []
    for row in rows:
        name = row["name"]
        if row["status"] != "ran":
            reason = row["status"] + (f": {row['error']}" if row.get("error") else "")
            lines.append(f"| {row['paper']} | `{name}` | {reason} | – | – |")
            continue
        result, run_dir = row["result"], Path(row["run_dir"])
        claims = (
            "<br>".join(_claim_cell(c) for c in result["claims"]) or "no claim registered for this profile"
        )
        if row.get("error"):
            claims = f"last reproduce failed ({row['error']}); showing the latest finished run<br>" + claims
        if result.get("overrides"):
            changed = ", ".join(f"`{k}={v}`" for k, v in result["overrides"].items())
            claims = f"run with overrides {changed}<br>" + claims
        plot_links = []
        for rel in result.get("plots", []):
            src = run_dir / rel
            if src.exists():
                dst = out_dir / "plots" / name / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
                plot_links.append(f"[{src.stem}](plots/{name}/{src.name})")
        minutes = result["wall_time_s"] / 60
        lines.append(
            f"| {row['paper']} | `{name}` | {claims} | {minutes:.1f} min | {' '.join(plot_links) or '–'} |"
        )
        details.append(_details(name, result, run_dir, plot_links))
    lines += ["", *details]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _details(name: str, result: dict[str, Any], run_dir: Path, plot_links: list[str]) -> str:
    parts = [
        f"## `{name}`",
        "",
        f"Run folder: `{run_dir}`"
        + (f"; data: `{result['data_path']}`" if result.get("data_path") else "; offline corpus"),
        "",
    ]
    if result.get("overrides"):
        parts += [
            "Config keys that differ from the profile: "
            + ", ".join(f"`{k}={v}`" for k, v in result["overrides"].items()),
            "",
        ]
    if result.get("notes"):
        parts += [f"- {n}" for n in result["notes"]] + [""]
    for table in result.get("tables", []):
        parts += [table, ""]
    metrics = result.get("metrics", {})
    if metrics and not result.get("tables"):
        parts += ["| metric | value |", "|---|---|"]
        parts += [f"| {k} | {format_metric(v, 4)} |" for k, v in metrics.items()]
        parts.append("")
    for link in plot_links:
        label, target = link[1:].split("](")
        parts.append(f"![{label}]({target[:-1]})")
    return "\n".join(parts) + "\n"
