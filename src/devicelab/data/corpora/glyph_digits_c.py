"""``glyph-digits-c``: CIFAR-10-C corruptions of glyph-digits' test split, in the CIFAR-10-C layout.

Spec ``tta-lsa.md`` §6.1 [reconstruction]: the source pool is the train split of the font domains of
``glyph-digits``; the target pool is their test split (held-out font families), from which ``glyph-digits-c``
is made: ``<corruption>.npy`` (5·N, 32, 32, 3) uint8 with severities 1..5 stacked in blocks of N, and
``labels.npy`` (5·N,) uint8 — the layout of the real CIFAR-10-C, so one reader serves both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from devicelab.core.seeding import child_rng
from devicelab.data.cache import atomic_build, corpus_dir, finish_manifest, is_built, read_manifest
from devicelab.data.corpora import BuildContext, CorpusBuilder, ensure_corpus
from devicelab.data.corruptions import FAITHFUL_CORRUPTIONS

C_CORPUS = "glyph-digits-c"
SEVERITIES = (1, 2, 3, 4, 5)


def load_pool(
    root: Path, domains: Sequence[str], split: str, image_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """The ``split`` images of several domains of a domain-folder corpus, concatenated: (N, H, W, 3), (N,)."""
    from devicelab.data.datasets.domains import list_domains, load_domain

    available = list_domains(root)
    missing = [d for d in domains if d not in available]
    if missing:
        raise ValueError(f"{root}: no domain {missing[0]!r}; the corpus has {', '.join(available)}")
    parts = [load_domain(root, d, split=split, image_size=image_size) for d in domains]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` indices of each class (sorted), without replacement; errors name a short class."""
    rng = child_rng(seed, "glyph-digits-c", "subset")
    chosen = []
    for k in np.unique(labels):
        pool = np.flatnonzero(labels == k)
        if len(pool) < per_class:
            raise ValueError(f"class {k} has {len(pool)} test images, fewer than per_class={per_class}")
        chosen.append(np.sort(rng.choice(pool, size=per_class, replace=False)))
    return np.concatenate(chosen)


def write_c_layout(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    corruptions: Sequence[str],
    seed: int,
    log: Callable[[str], None] = print,
) -> dict:
    """Corrupt ``images`` at severities 1..5 and write ``<corruption>.npy`` + ``labels.npy`` into ``out``."""
    from devicelab.data.corruptions import APPROXIMATE_CORRUPTIONS, corrupt

    if images.shape[1:] != (32, 32, 3):
        raise ValueError(f"the CIFAR-C corruptions assume 32×32 RGB images, got {images.shape[1:]}")
    n = len(images)
    np.save(out / "labels.npy", np.tile(labels.astype(np.uint8), len(SEVERITIES)))
    for name in corruptions:
        block = np.empty((len(SEVERITIES) * n, 32, 32, 3), dtype=np.uint8)
        for s in SEVERITIES:
            block[(s - 1) * n : s * n] = corrupt(images, name, s, seed)
        np.save(out / f"{name}.npy", block)
        log(f"{C_CORPUS}: {name} done ({len(SEVERITIES)} × {n} images)")
    approx = [c for c in corruptions if c in APPROXIMATE_CORRUPTIONS]
    return {
        "approximate_corruptions": approx,
        "warnings": [f"{c} is an approximation of the reference corruption" for c in approx],
    }


def ensure_glyph_digits_c(
    glyph_root: Path,
    profile: str,
    corruptions: Sequence[str],
    per_class: int,
    domains: Sequence[str],
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Path:
    """The ``glyph-digits-c`` folder for ``profile``, built (atomically) when missing or when it was built
    from another source corpus, other domains, another size or fewer corruptions."""
    glyph_root = Path(glyph_root)
    source_id = _corpus_identity(glyph_root)
    wanted = {"source_corpus": source_id, "per_class": per_class, "domains": list(domains), "seed": seed}
    if is_built(C_CORPUS, profile):
        manifest = read_manifest(C_CORPUS, profile)
        same = all(manifest.get("parameters", {}).get(k) == v for k, v in wanted.items())
        have = set(manifest.get("parameters", {}).get("corruptions", []))
        if same and set(corruptions) <= have:
            return corpus_dir(C_CORPUS, profile)
        if same:
            corruptions = sorted(have | set(corruptions))
    images, labels = load_pool(glyph_root, domains, "test")
    subset = balanced_subset(labels, per_class, seed)
    with atomic_build(C_CORPUS, profile, force=True) as out:
        fields = write_c_layout(out, images[subset], labels[subset], corruptions, seed, log)
        finish_manifest(
            out,
            {
                "corpus": C_CORPUS,
                "profile": profile,
                "seed": seed,
                "parameters": {
                    **wanted,
                    "corruptions": list(corruptions),
                    "severities": list(SEVERITIES),
                    "images_per_severity": int(len(subset)),
                },
                "sources": [
                    {"kind": "generated", "name": "glyph-digits test splits", "root": str(glyph_root)}
                ],
                "counts": {"per_class": per_class, "classes": int(len(np.unique(labels)))},
                **fields,
            },
        )
    log(f"built {C_CORPUS} ({profile}): {corpus_dir(C_CORPUS, profile)}")
    return corpus_dir(C_CORPUS, profile)


def _corpus_identity(root: Path) -> str:
    """The content hash of a built corpus (its manifest), or its resolved path for a plain folder."""
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text()).get("content_sha256") or str(root.resolve())
        except json.JSONDecodeError:
            pass
    return str(root.resolve())


def load_corrupted(root: Path, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """One (corruption, severity) block of a CIFAR-10-C-layout folder (real or generated): images, labels."""
    from devicelab.data.datasets.cifar10c import load_cifar10c

    images, labels = load_cifar10c(Path(root), corruption, severity)
    return np.asarray(images), np.asarray(labels, dtype=np.int64)


# spec tta-lsa.md §6.1: per-class size by profile; the default generated set is the 12 faithful corruptions
BUILD_DEFAULTS = {
    "smoke": {"per_class": 12, "domains": ["serif", "sans", "mono"]},
    "quick": {"per_class": 300, "domains": ["serif", "sans", "mono", "hand", "decor"]},
    "full": {"per_class": 1000, "domains": ["serif", "sans", "mono", "hand", "decor"]},
}


def _build(ctx: BuildContext) -> dict:
    """``devicelab data build glyph-digits-c``: the defaults of the profile over the built glyph-digits."""
    settings = BUILD_DEFAULTS[ctx.profile]
    glyph_root = ensure_corpus("glyph-digits", ctx.profile)
    images, labels = load_pool(glyph_root, settings["domains"], "test")
    subset = balanced_subset(labels, settings["per_class"], ctx.seed)
    corruptions = list(FAITHFUL_CORRUPTIONS)
    fields = write_c_layout(ctx.out, images[subset], labels[subset], corruptions, ctx.seed, ctx.log)
    return {
        "parameters": {
            "source_corpus": _corpus_identity(glyph_root),
            "per_class": settings["per_class"],
            "domains": settings["domains"],
            "seed": ctx.seed,
            "corruptions": corruptions,
            "severities": list(SEVERITIES),
            "images_per_severity": int(len(subset)),
        },
        "sources": [{"kind": "generated", "name": "glyph-digits test splits", "root": str(glyph_root)}],
        "counts": {"per_class": settings["per_class"], "classes": int(len(np.unique(labels)))},
        **fields,
    }


BUILDER = CorpusBuilder(
    name=C_CORPUS,
    description="glyph-digits test split under the CIFAR-10-C corruptions, in the CIFAR-10-C layout",
    build=_build,
)
