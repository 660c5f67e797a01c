"""Trained artefacts that a method builds once from an offline corpus and caches under ``$DEVICELAB_DATA``.

``devicelab data build NAME --profile P`` builds a corpus or one of these. Each entry names a function
``build(profile, force=False, log=print) -> Path`` that builds the artefact for the profile's config (or
returns the cached one, after checking that it was built with that config and still passes its checks).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

# name -> "module:function"
ARTEFACTS: dict[str, str] = {
    "glyph-world-evaluators": "devicelab.methods.hollowed_net.artefacts:build_evaluators",
    "tiny-sd": "devicelab.methods.hollowed_net.artefacts:build_tiny_sd",
}


def build_artefact(name: str, profile: str, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Build (or check and return) artefact ``name`` for ``profile``."""
    module, _, function = ARTEFACTS[name].partition(":")
    folder = getattr(importlib.import_module(module), function)(profile, force=force, log=log)
    log(f"{name} ({profile}) is ready: {folder}")
    return folder


def is_artefact_built(name: str, profile: str) -> bool:
    from devicelab.core.paths import data_root

    return (data_root() / name / profile / "manifest.json").is_file()
