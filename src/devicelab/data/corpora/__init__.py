"""Builders of the offline corpora. Each module defines ``BUILDER``, a :class:`CorpusBuilder`.

``build_corpus(name, profile)`` runs a builder inside an atomic build; ``ensure_corpus`` builds on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicelab.core.config import ConfigError, config_hash
from devicelab.data.cache import (
    atomic_build,
    check_unchanged,
    corpus_dir,
    finish_manifest,
    is_built,
    read_manifest,
)
from devicelab.data.debs import DebFetcher

# name -> module (relative to this package)
CORPORA: dict[str, str] = {
    "synth-commands": "synth_commands",
    "synth-speakers": "synth_speakers",
    "synth-phones": "synth_phones",
    "game-scenes": "game_scenes",
    "game-events": "game_events",
    "glyph-digits": "glyph_digits",
    "glyph-digits-c": "glyph_digits_c",
    "glyph-world": "glyph_world",
}


@dataclass
class BuildContext:
    """What a builder gets: the (partial) output folder and the build settings."""

    out: Path
    profile: str
    seed: int = 0
    workers: int = 1
    extras: tuple[str, ...] = ()
    fetcher: DebFetcher = field(default_factory=DebFetcher)
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class CorpusBuilder:
    """``build(ctx)`` writes the corpus into ``ctx.out`` and returns the manifest fields it owns
    (``sources``, ``counts``, ``parameters``, ``tool_versions``, ``warnings``...).
    ``sources(profile, extras)`` lists the Debian packages a build would fetch (nothing is fetched).
    ``profiles`` (or the module's ``PROFILES``) are hashed into the manifest, so a corpus built with other
    parameters is rebuilt, never reused."""

    name: str
    description: str
    build: Callable[[BuildContext], dict[str, Any]]
    sources: Callable[[str, tuple[str, ...]], list[str]] = lambda profile, extras: []
    profiles: dict[str, Any] | None = None  # parameters per profile; default: the builder module's PROFILES


def _module_name(name: str) -> str:
    if name not in CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; valid names: {', '.join(CORPORA)}")
    return f"{__name__}.{CORPORA[name]}"


def is_available(name: str) -> bool:
    return importlib.util.find_spec(_module_name(name)) is not None


def get_builder(name: str) -> CorpusBuilder:
    module = _module_name(name)
    if importlib.util.find_spec(module) is None:
        raise NotImplementedError(f"corpus {name!r} has no builder yet")
    return importlib.import_module(module).BUILDER


def parameters_key(name: str, profile: str, builder: CorpusBuilder | None = None) -> str | None:
    """Hash of the builder's parameters for ``profile``; ``None`` when the builder declares none."""
    builder = builder or get_builder(name)
    profiles = builder.profiles
    if profiles is None and importlib.util.find_spec(_module_name(name)) is not None:
        profiles = getattr(importlib.import_module(_module_name(name)), "PROFILES", None)
    if not isinstance(profiles, dict) or profile not in profiles:
        return None
    return config_hash({"corpus": name, "profile": profile, "parameters": profiles[profile]})


def is_stale(name: str, profile: str, root: Path | None = None) -> bool:
    """A built corpus whose recorded parameters differ from its builder's (manifests without a key pass)."""
    if not is_built(name, profile, root):
        return False
    have = read_manifest(name, profile, root).get("parameters_key")
    want = parameters_key(name, profile)
    return have is not None and want is not None and have != want


def build_corpus(
    name: str,
    profile: str,
    *,
    seed: int = 0,
    workers: int = 1,
    extras: tuple[str, ...] = (),
    force: bool = False,
    fetcher: DebFetcher | None = None,
    log: Callable[[str], None] = print,
    root: Path | None = None,
) -> Path:
    """Build corpus ``name`` for ``profile`` atomically; returns its folder."""
    builder = get_builder(name)
    want = parameters_key(name, profile, builder)
    if not force and is_stale(name, profile, root):
        have = read_manifest(name, profile, root).get("parameters_key")
        log(f"{name} ({profile}) was built with other parameters ({have}, now {want}): rebuilding")
        force = True
    if is_built(name, profile, root) and not force:
        check_unchanged(name, profile, root)  # a changed corpus is an error that says to use --force
        log(f"{name} ({profile}) is already built: {corpus_dir(name, profile, root)}")
        return corpus_dir(name, profile, root)
    t0 = time.perf_counter()
    with atomic_build(name, profile, force=force, root=root, log=log) as out:
        ctx = BuildContext(
            out=out,
            profile=profile,
            seed=seed,
            workers=workers,
            extras=tuple(extras),
            fetcher=fetcher or DebFetcher(),
            log=log,
        )
        fields = builder.build(ctx)
        finish_manifest(
            out,
            {
                "corpus": name,
                "profile": profile,
                "seed": seed,
                "extras": list(extras),
                "build_seconds": round(time.perf_counter() - t0, 2),
                "parameters_key": want,
                **fields,
            },
        )
    log(f"built {name} ({profile}) in {time.perf_counter() - t0:.1f} s: {corpus_dir(name, profile, root)}")
    return corpus_dir(name, profile, root)


def ensure_corpus(name: str, profile: str) -> Path:
    """The corpus folder, building it (seed 0) if it is not built yet or was built with other parameters."""
    if not is_built(name, profile) or is_stale(name, profile):
        build_corpus(name, profile)
    return corpus_dir(name, profile)
