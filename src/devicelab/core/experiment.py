"""One experiment = a typed config with profiles, a run function and the paper's pre-registered claims."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devicelab.core.claims import Claim, MetricValue

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

RunFunction = Callable[[Any, "RunContext"], Mapping[str, MetricValue]]
# export(run_dir, options) writes deployable artefacts of a finished run (e.g. options["onnx"] = out path)
ExportFunction = Callable[[Path, Mapping[str, Any]], None]


class QualityGateError(RuntimeError):
    """A trained artefact (a base model, an evaluator) missed the quality gate its spec sets."""


@dataclass(frozen=True)
class Experiment:
    """What the registry knows of one paper's experiment.

    ``run(config, ctx)`` trains the method and its baselines side by side and returns the measured metrics
    (a number, or a list with one value per seed); ``claims`` compare those metrics.
    """

    name: str
    paper: str
    config_cls: type
    run: RunFunction
    claims: tuple[Claim, ...] = ()
    corpora: tuple[str, ...] = ()
    docs: str = ""
    headline: tuple[str, ...] = field(default=())  # metric keys shown in the report beside the claims
    export: ExportFunction | None = None
