"""The experiment registry: one stable name per paper -> its :class:`~devicelab.core.experiment.Experiment`.

Each implemented method defines ``EXPERIMENT`` in ``devicelab.methods.<package>.experiment``; the registry
imports it lazily, so ``devicelab list`` stays fast and a method that is not written yet shows as such.
Extra experiments (your own, or test fixtures) are registered with ``DEVICELAB_PLUGINS=module[,module]``:
each module, or the ``experiment`` module of each package, defines ``EXPERIMENT``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass

from devicelab.core.config import ConfigError
from devicelab.core.experiment import Experiment


@dataclass(frozen=True)
class Entry:
    name: str
    paper: str
    package: str  # devicelab.methods.<package>

    @property
    def module(self) -> str:
        return f"devicelab.methods.{self.package}.experiment"


ENTRIES: tuple[Entry, ...] = (
    Entry("kws-ssn", "SubSpectral Normalization for Neural Audio Data Processing", "kws_ssn"),
    Entry(
        "asc-factorized",
        "Acoustic Scene Classification Based on a Large-margin Factorized CNN",
        "asc_factorized",
    ),
    Entry(
        "sed-tritrain",
        "Weakly Labeled Sound Event Detection Using Tri-training and Adversarial Learning",
        "sed_tritrain",
    ),
    Entry(
        "sv-kan",
        "End-to-End Text-independent Speaker Verification with a Keyword Adversarial Network",
        "sv_kan",
    ),
    Entry(
        "phoneme-vgpds",
        "Phoneme Classification using Constrained Variational Gaussian Process Dynamical System",
        "phoneme_vgpds",
    ),
    Entry("fed-ua", "Federated Learning of User Authentication Models", "fed_ua"),
    Entry("fed-dg", "Feature Diversification and Adaptation for Federated Domain Generalization", "fed_dg"),
    Entry(
        "tta-lsa", "Label Shift Adapter for Test-Time Adaptation under Covariate and Label Shifts", "tta_lsa"
    ),
    Entry(
        "hollowed-net",
        "Hollowed Net for On-Device Personalization of Text-to-Image Diffusion Models",
        "hollowed_net",
    ),
)


def _plugins() -> dict[str, Experiment]:
    out = {}
    for mod in filter(None, (m.strip() for m in os.environ.get("DEVICELAB_PLUGINS", "").split(","))):
        try:
            module = importlib.import_module(mod)
            if not hasattr(module, "EXPERIMENT"):  # a method package: its experiment.py holds EXPERIMENT
                module = importlib.import_module(f"{mod}.experiment")
        except ImportError as e:
            raise ConfigError(
                f"DEVICELAB_PLUGINS={os.environ['DEVICELAB_PLUGINS']}: cannot import {mod} ({e})"
            ) from None
        if not hasattr(module, "EXPERIMENT"):
            raise ConfigError(f"DEVICELAB_PLUGINS: {module.__name__} defines no EXPERIMENT")
        out[module.EXPERIMENT.name] = module.EXPERIMENT
    return out


def names() -> list[str]:
    """Every registered experiment name: the nine papers, then plugins."""
    return [e.name for e in ENTRIES] + [n for n in _plugins() if n not in {e.name for e in ENTRIES}]


def paper(name: str) -> str:
    for e in ENTRIES:
        if e.name == name:
            return e.paper
    return get_experiment(name).paper


def is_implemented(name: str) -> bool:
    for e in ENTRIES:
        if e.name == name:
            return importlib.util.find_spec(e.module) is not None if _package_exists(e) else False
    return name in _plugins()


def _package_exists(entry: Entry) -> bool:
    return importlib.util.find_spec(f"devicelab.methods.{entry.package}") is not None


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a clear error lists the valid names or says it is not implemented."""
    plugins = _plugins()
    if name in plugins:
        return plugins[name]
    for e in ENTRIES:
        if e.name == name:
            if not is_implemented(name):
                raise NotImplementedError(f"experiment {name!r} ({e.paper}) is not implemented yet")
            return importlib.import_module(e.module).EXPERIMENT
    raise ConfigError(f"unknown experiment {name!r}; valid names: {', '.join(names())}")


@dataclass(frozen=True)
class Overview:
    """What ``devicelab list`` and the report show of one experiment beside its numbers."""

    name: str
    paper: str
    implemented: bool
    corpora: tuple[str, ...] = ()  # offline corpora its quick profile builds
    docs: str = ""  # its page, relative to the repository root
    headline: tuple[str, ...] = ()  # metric keys shown beside the claims


def overview(name: str) -> Overview:
    """The contract fields of ``name`` (empty ones for an experiment that is not implemented)."""
    if not is_implemented(name):
        return Overview(name, paper(name), False)
    experiment = get_experiment(name)
    return Overview(
        name, experiment.paper, True, tuple(experiment.corpora), experiment.docs, tuple(experiment.headline)
    )
