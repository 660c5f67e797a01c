"""``glyph-digits``: ten digit classes in six visual domains, for domain generalisation and test-time
adaptation.

``specs/corpora.md`` (glyph-digits). Domains: ``sklearn`` (the 1,797 8x8 scans of ``load_digits``,
upsampled, grey on black) and five font-style domains (``serif sans mono hand decor``) rendered from Debian
font packages, each on its own background source (GIMP patterns, plain colours, gradients, value noise).
Splits are by font family (60/40 within a domain) and by scan for sklearn (stratified by class). The smoke
profile downloads nothing: it reads the fonts installed under ``/usr/share/fonts`` (DejaVu, Liberation,
FreeFont) and uses procedural backgrounds, so it has the ``sklearn serif sans mono`` domains only.

Layout (DomainNet lists, so ``devicelab.data.datasets.domains`` reads it)::

    <domain>/<digit>/<id>.png          32x32 RGB
    splits/<domain>_{train,test}.txt   "<domain>/<digit>/<id>.png <label>"
    labels.csv  fonts.csv  provenance.csv
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from devicelab.core.seeding import child_rng
from devicelab.data.corpora import BuildContext, CorpusBuilder
from devicelab.data.corpora._workers import worker_pool
from devicelab.data.images import backgrounds as bg
from devicelab.data.images.fonts import DIGITS, FontFace, package_faces, style_domain
from devicelab.data.images.render import (
    SUPERSAMPLE,
    GlyphError,
    GlyphStyle,
    canonical_coverage,
    choose_ink,
    compose,
    face_glyphs,
    place_glyph,
)

NAME = "glyph-digits"
FONT_DOMAINS = ("serif", "sans", "mono", "hand", "decor")
DOMAINS = ("sklearn", *FONT_DOMAINS)

QUICK_PACKAGES: dict[str, tuple[str, ...]] = {
    "serif": (
        "fonts-dejavu-extra",
        "fonts-liberation",
        "fonts-crosextra-caladea",
        "fonts-linuxlibertine",
        "fonts-ebgaramond",
        "fonts-gfs-didot",
        "fonts-adf-accanthis",
        "fonts-adf-baskervald",
        "fonts-adf-berenis",
        "fonts-oldstandard",
        "fonts-sil-gentium",
        "fonts-cardo",
    ),
    "sans": (
        "fonts-dejavu-core",
        "fonts-croscore",
        "fonts-crosextra-carlito",
        "fonts-open-sans",
        "fonts-cantarell",
        "fonts-adf-gillius",
        "fonts-adf-universalis",
        "fonts-adf-verana",
        "fonts-cabin",
        "fonts-comfortaa",
        "fonts-quicksand",
        "fonts-league-spartan",
        "fonts-beteckna",
    ),
    "mono": (
        "fonts-inconsolata",
        "fonts-hack",
        "fonts-jetbrains-mono",
        "fonts-noto-mono",
        "fonts-monoid",
        "fonts-mononoki",
        "fonts-anonymous-pro",
        "fonts-courier-prime",
        "fonts-ocr-a",
        "fonts-ocr-b",
        "fonts-fantasque-sans",
        "fonts-go",
        "fonts-league-mono",
    ),
    "hand": (
        "fonts-dkg-handwriting",
        "fonts-breip",
        "fonts-humor-sans",
        "fonts-comic-neue",
        "fonts-dancingscript",
        "fonts-kaushanscript",
        "fonts-kristi",
        "fonts-rufscript",
        "fonts-femkeklaver",
        "fonts-ecolier-court",
        "fonts-isabella",
        "fonts-tomsontalks",
        "fonts-lobster",
        "fonts-lobstertwo",
    ),
    "decor": (
        "fonts-aenigma",
        "fonts-blankenburg",
        "fonts-staypuft",
        "fonts-summersby",
        "fonts-yanone-kaffeesatz",
    ),
}
FULL_EXTRA_PACKAGES: dict[str, tuple[str, ...]] = {
    "serif": (
        "fonts-texgyre",
        "fonts-lmodern",
        "fonts-cmu",
        "fonts-junicode",
        "fonts-urw-base35",
        "fonts-sil-charis",
        "fonts-averia-serif-gwf",
    ),
    "sans": (
        "fonts-roboto-unhinted",
        "fonts-lato",
        "fonts-liberation2",
        "fonts-freefont-ttf",
        "fonts-sil-andika",
        "fonts-paratype",
        "fonts-averia-sans-gwf",
    ),
    "mono": ("fonts-firacode", "fonts-tlwg-typist"),
}
# Fonts installed on the system (scripts/setup-system.sh), read by the smoke profile: package, folder, domain.
SYSTEM_FONTS: tuple[tuple[str, str, str], ...] = (
    ("fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu", "sans"),
    ("fonts-liberation", "/usr/share/fonts/truetype/liberation", "serif"),
    ("fonts-freefont-ttf", "/usr/share/fonts/truetype/freefont", "sans"),
)
PATTERNS_PACKAGE = "gimp-data"
PATTERNS_DIR = "usr/share/gimp/2.0/patterns"
WALLPAPERS_PACKAGE = "mate-backgrounds"  # --extras wallpapers: photo crops join the decor backgrounds
WALLPAPERS_DIR = "usr/share/backgrounds"
EXTRAS = ("wallpapers", "shared-backgrounds")
# Background kinds per domain: GIMP pattern folders (capitalised) or procedural kinds.
DOMAIN_BACKGROUNDS: dict[str, tuple[str, ...]] = {
    "serif": ("Paper", "Fabric"),
    "sans": ("plain",),
    "mono": ("gradient",),
    "hand": ("Wood", "Stone"),
    "decor": ("noise", "Sky", "Water"),
}
SHARED_BACKGROUNDS = ("plain", "gradient", "noise", "Paper", "Fabric", "Wood", "Stone", "Sky", "Water")
# Without gimp-data (smoke): a procedural stand-in for each pattern folder.
PROCEDURAL_STANDIN = {
    "Paper": "paper",
    "Fabric": "paper",
    "Wood": "noise",
    "Stone": "noise",
    "Sky": "gradient",
    "Water": "noise",
    "Wallpaper": "noise",
}


@dataclass(frozen=True)
class GlyphDigitsParams:
    """Sizes and rules of one profile (``specs/corpora.md``, glyph-digits: Sizes, Build, Splits)."""

    per_class: int = 600  # images per class per font domain (train + test)
    sklearn_per_class: int | None = None  # None: every scan
    train_fraction: float = 0.6
    image_size: int = 32
    min_digits_read: int = 8  # of 10, by the logistic-regression reader
    reader_variants: int = 4  # augmented renders per (training face, digit) for the reader
    system_fonts: bool = False  # smoke: read installed fonts, fetch nothing
    max_faces_per_family: int | None = None  # smoke: a few faces per family keep the build to seconds


PROFILES: dict[str, GlyphDigitsParams] = {
    "smoke": GlyphDigitsParams(
        per_class=10, sklearn_per_class=10, reader_variants=2, system_fonts=True, max_faces_per_family=2
    ),
    "quick": GlyphDigitsParams(),
    "full": GlyphDigitsParams(per_class=2000),
}


def _params(profile: str) -> GlyphDigitsParams:
    if profile not in PROFILES:
        raise ValueError(f"glyph-digits: unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    return PROFILES[profile]


def packages(profile: str, extras: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Font packages per domain for a profile (none for smoke)."""
    if _params(profile).system_fonts:
        return {}
    chosen = {d: tuple(p) for d, p in QUICK_PACKAGES.items()}
    if profile == "full":
        for domain, extra in FULL_EXTRA_PACKAGES.items():
            chosen[domain] = chosen[domain] + extra
    return chosen


def sources(profile: str, extras: tuple[str, ...] = ()) -> list[str]:
    """Debian packages a build fetches."""
    chosen = packages(profile, extras)
    names = [p for domain in FONT_DOMAINS for p in chosen.get(domain, ())] + (
        [PATTERNS_PACKAGE] if chosen else []
    )
    return names + ([WALLPAPERS_PACKAGE] if "wallpapers" in extras else [])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass
class FaceRecord:
    """One candidate face and the decisions about it (a row of ``fonts.csv``)."""

    face: FontFace
    domain: str
    face_id: str
    split: str = ""
    kept: bool = False
    reason: str = ""
    digits_read: int = -1

    def row(self) -> dict[str, Any]:
        return {
            "face_id": self.face_id,
            "package": self.face.package,
            "font_file": self.face.member,
            "family": self.face.family,
            "face": self.face.face,
            "domain": self.domain,
            "split": self.split,
            "kept": int(self.kept),
            "reason": self.reason,
            "digits_read": self.digits_read,
        }


# ---------------------------------------------------------------------------------------------------------
# Fonts: collect, dedupe, split by family, filter by a reader
# ---------------------------------------------------------------------------------------------------------


def _installed_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def collect_faces(
    ctx: BuildContext, params: GlyphDigitsParams
) -> tuple[list[FaceRecord], list[dict], list[str]]:
    """Every candidate face with its style domain; the manifest source records; warnings."""
    records: list[FaceRecord] = []
    source_records: list[dict] = []
    warnings: list[str] = []
    if params.system_fonts:
        for package, folder, domain in SYSTEM_FONTS:
            root = Path(folder)
            if not root.is_dir():
                warnings.append(f"{folder} not found ({package} not installed); its faces are skipped")
                continue
            faces = package_faces(package, root)
            source_records.append(
                {
                    "kind": "system",
                    "name": package,
                    "version": _installed_version(package),
                    "path": folder,
                    "licence": [],
                    "non_free": False,
                    "files_used": [f.member for f in faces],
                }
            )
            records += [FaceRecord(f, style_domain(f, domain), "") for f in faces]
    else:
        for domain, names in packages(ctx.profile, ctx.extras).items():
            for name in names:
                unpacked = ctx.fetcher.fetch(name)
                faces = package_faces(unpacked.name, unpacked.root)
                if not faces:
                    warnings.append(f"{unpacked.name}: no readable .ttf/.otf face")
                source_records.append(unpacked.source_record([f.member for f in faces]))
                records += [FaceRecord(f, style_domain(f, domain), "") for f in faces]
    if params.max_faces_per_family is not None:
        per_family: Counter = Counter()
        kept_records = []
        for rec in records:  # records are in package, path order
            per_family[(rec.domain, rec.face.family)] += 1
            if per_family[(rec.domain, rec.face.family)] <= params.max_faces_per_family:
                kept_records.append(rec)
        records = kept_records
    for rec in records:
        key = f"{rec.face.package}:{rec.face.member}"
        rec.face_id = f"{_slug(rec.face.face)[:32]}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"
    return records, source_records, warnings


def _canonical_set(face: FontFace) -> np.ndarray:
    """The ten digits' black-on-white reading views, (10, 32, 32) in [0, 1]."""
    glyphs = face_glyphs(face.path)
    return np.stack([canonical_coverage(glyphs, d) for d in DIGITS])


def _reader_views(face: FontFace, seed: int, variants: int) -> np.ndarray:
    """Augmented black-on-white views for training the reader: (10 * variants, 32, 32)."""
    glyphs = face_glyphs(face.path)
    views = []
    for digit in DIGITS:
        for k in range(variants):
            rng = child_rng(seed, "reader", face.member, face.package, digit, k)
            style = replace(GlyphStyle.draw(rng), dx_px=0.0, dy_px=0.0)
            coverage = place_glyph(glyphs.mask(digit), style, 32)
            views.append(coverage.reshape(32, SUPERSAMPLE, 32, SUPERSAMPLE).mean(axis=(1, 3)))
    return np.stack(views)


def reader_features(views: np.ndarray) -> np.ndarray:
    """Reader input: 32x32 views pooled to 16x16 and flattened, (N, 256)."""
    n = views.shape[0]
    return views.reshape(n, 16, 2, 16, 2).mean(axis=(2, 4)).reshape(n, -1)


def split_families(records: list[FaceRecord], seed: int, train_fraction: float) -> None:
    """Deal each domain's families (a family's faces together) to train/test: ``train_fraction`` of them."""
    by_domain: dict[str, list[str]] = defaultdict(list)
    for rec in records:
        if rec.face.family not in by_domain[rec.domain]:
            by_domain[rec.domain].append(rec.face.family)
    assignment = {}
    for domain, families in by_domain.items():
        families = sorted(families)
        order = child_rng(seed, "family-split", domain).permutation(len(families))
        n_train = int(round(train_fraction * len(families)))
        if len(families) >= 2:
            n_train = min(max(n_train, 1), len(families) - 1)
        for rank, idx in enumerate(order):
            assignment[(domain, families[idx])] = "train" if rank < n_train else "test"
    for rec in records:
        rec.split = assignment[(rec.domain, rec.face.family)]


def filter_faces(records: list[FaceRecord], params: GlyphDigitsParams, seed: int, log) -> dict[str, Any]:
    """Keep a face if it has 0-9, its ten-digit render is new, and a reader trained on the sans/serif/mono
    training faces reads at least ``min_digits_read`` of its digits. Decisions go into ``fonts.csv``."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    seen: dict[str, str] = {}
    canonical: dict[str, np.ndarray] = {}
    for rec in records:
        if not rec.face.has_digits:
            rec.reason = "cmap lacks a digit"
            continue
        try:
            views = _canonical_set(rec.face)
        except (GlyphError, OSError, ValueError) as e:
            rec.reason = f"render failed: {e}"
            continue
        digest = hashlib.sha256(np.round(views * 255).astype(np.uint8).tobytes()).hexdigest()
        if digest in seen:
            rec.reason = f"duplicate of {seen[digest]}"
            continue
        seen[digest] = rec.face_id
        canonical[rec.face_id] = views
    split_families([r for r in records if r.face_id in canonical], seed, params.train_fraction)
    teachers = [
        r
        for r in records
        if r.face_id in canonical and r.domain in ("serif", "sans", "mono") and r.split == "train"
    ]
    if not teachers:
        raise RuntimeError("glyph-digits: no serif/sans/mono training face to train the digit reader")
    x, y = [], []
    for rec in teachers:
        x.append(canonical[rec.face_id])
        y += list(range(10))
        x.append(_reader_views(rec.face, seed, params.reader_variants))
        y += [d for d in range(10) for _ in range(params.reader_variants)]
    reader = LogisticRegression(max_iter=300, C=1.0)
    with threadpool_limits(1):  # a small problem: BLAS threads only add contention
        reader.fit(reader_features(np.concatenate(x)), np.array(y))
    log(f"glyph-digits: reader trained on {len(teachers)} faces ({len(y)} views)")
    for rec in records:
        if rec.face_id not in canonical:
            continue
        predicted = reader.predict(reader_features(canonical[rec.face_id]))
        rec.digits_read = int((predicted == np.arange(10)).sum())
        rec.kept = rec.digits_read >= params.min_digits_read
        rec.reason = "kept" if rec.kept else f"reader read {rec.digits_read}/10"
    return {"reader_faces": len(teachers), "reader_views": len(y)}


# ---------------------------------------------------------------------------------------------------------
# Rendering (runs in worker processes; every image draws from its own generator)
# ---------------------------------------------------------------------------------------------------------

_PATTERNS: dict[str, list[bg.Pattern]] = {}


def _init_worker(patterns: dict[str, list[bg.Pattern]]) -> None:
    global _PATTERNS
    _PATTERNS = patterns


def draw_background(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A background of ``kind`` (procedural or a GIMP pattern folder): float (size, size, 3) and its name."""
    if kind in bg.PROCEDURAL:
        return bg.PROCEDURAL[kind](size, rng), kind
    choices = _PATTERNS.get(kind)
    if not choices:
        standin = PROCEDURAL_STANDIN[kind]
        return bg.PROCEDURAL[standin](size, rng), standin
    pattern = choices[int(rng.integers(0, len(choices)))]
    return bg.texture(pattern, size, rng), f"{pattern.package}:{pattern.member}"


@dataclass(frozen=True)
class RenderJob:
    """All renders of one face: digit d gets ``counts[d]`` images."""

    face: FontFace
    face_id: str
    domain: str
    split: str
    counts: tuple[int, ...]
    background_kinds: tuple[str, ...]
    out: str
    seed: int
    image_size: int


def render_face(job: RenderJob) -> list[dict[str, Any]]:
    """Render and write one face's images; returns their ``labels.csv`` rows."""
    glyphs = face_glyphs(job.face.path)
    size = job.image_size
    rows = []
    for digit, count in zip(DIGITS, job.counts):
        for k in range(count):
            rng = child_rng(job.seed, "render", job.domain, job.face_id, digit, k)
            style = GlyphStyle.draw(rng)
            kind = job.background_kinds[int(rng.integers(0, len(job.background_kinds)))]
            background, background_name = draw_background(kind, size, rng)
            background = np.repeat(np.repeat(background, SUPERSAMPLE, axis=0), SUPERSAMPLE, axis=1)
            coverage = place_glyph(glyphs.mask(digit), style, size)
            ink = choose_ink(background, coverage, rng)
            image = compose(background, coverage, ink)
            rel = f"{job.domain}/{digit}/{job.face_id}_{k:03d}.png"
            Image.fromarray(image).save(Path(job.out) / rel, format="PNG")
            rows.append(
                {
                    "path": rel,
                    "domain": job.domain,
                    "label": int(digit),
                    "package": job.face.package,
                    "font_file": job.face.member,
                    "family": job.face.family,
                    "face": job.face.face,
                    "background": background_name,
                    "size": round(style.height_frac, 4),
                    "angle": round(style.angle_deg, 3),
                    "split": job.split,
                    "parameters": json.dumps(
                        {
                            **{k2: round(v, 4) for k2, v in asdict(style).items()},
                            "ink": [int(c) for c in ink],
                        },
                        sort_keys=True,
                    ),
                }
            )
    return rows


def _counts_per_face(total_per_class: int, n_faces: int) -> list[int]:
    """Spread ``total_per_class`` renders of a digit over ``n_faces`` faces (the first ones get the rest)."""
    base, rest = divmod(total_per_class, n_faces)
    return [base + (1 if i < rest else 0) for i in range(n_faces)]


def plan_renders(
    records: list[FaceRecord],
    params: GlyphDigitsParams,
    out: Path,
    seed: int,
    background_kinds: dict[str, tuple[str, ...]],
) -> tuple[list[RenderJob], list[str]]:
    """One job per kept face: per split, ``per_class`` x (train fraction | rest) renders per digit."""
    n_train = int(round(params.per_class * params.train_fraction))
    target = {"train": n_train, "test": params.per_class - n_train}
    jobs, warnings = [], []
    for domain in FONT_DOMAINS:
        for split in ("train", "test"):
            faces = sorted(
                (r for r in records if r.kept and r.domain == domain and r.split == split),
                key=lambda r: r.face_id,
            )
            if not faces:
                if any(r.domain == domain for r in records):
                    warnings.append(f"{domain}: no kept face in the {split} split")
                continue
            counts = _counts_per_face(target[split], len(faces))
            order = child_rng(seed, "face-order", domain, split).permutation(len(faces))  # who gets the extra
            for rank, idx in enumerate(order):
                rec = faces[idx]
                if counts[rank] == 0:
                    continue
                jobs.append(
                    RenderJob(
                        rec.face,
                        rec.face_id,
                        domain,
                        split,
                        (counts[rank],) * 10,
                        background_kinds[domain],
                        str(out),
                        seed,
                        params.image_size,
                    )
                )
    return jobs, warnings


def render_all(jobs: list[RenderJob], patterns: dict[str, list[bg.Pattern]], workers: int) -> list[dict]:
    if workers <= 1 or len(jobs) < 2:
        _init_worker(patterns)
        return [row for job in jobs for row in render_face(job)]
    with worker_pool(workers, initializer=_init_worker, initargs=(patterns,)) as pool:
        return [row for rows in pool.map(render_face, jobs, chunksize=4) for row in rows]


# ---------------------------------------------------------------------------------------------------------
# sklearn scans
# ---------------------------------------------------------------------------------------------------------


def write_sklearn(out: Path, params: GlyphDigitsParams, seed: int) -> list[dict[str, Any]]:
    """The ``load_digits`` scans, upsampled bilinearly to 32x32, grey on black; split 60/40 per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for label in range(10):
        idx = np.flatnonzero(digits.target == label)
        idx = idx[child_rng(seed, "sklearn-split", label).permutation(len(idx))]
        n_train = int(round(params.train_fraction * len(idx)))
        chosen = [(i, "train" if rank < n_train else "test") for rank, i in enumerate(idx)]
        if params.sklearn_per_class is not None:
            keep_train = int(round(params.train_fraction * params.sklearn_per_class))
            chosen = [c for c in chosen if c[1] == "train"][:keep_train] + [
                c for c in chosen if c[1] == "test"
            ][: params.sklearn_per_class - keep_train]
        for i, split in sorted(chosen):
            scan = (digits.images[i] * (255.0 / 16.0)).astype(np.float32)
            grey = np.asarray(
                Image.fromarray(scan, mode="F").resize((params.image_size,) * 2, Image.Resampling.BILINEAR)
            )
            grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
            rel = f"sklearn/{label}/scan{i:04d}.png"
            Image.fromarray(np.repeat(grey[..., None], 3, axis=-1)).save(out / rel, format="PNG")
            rows.append(
                {
                    "path": rel,
                    "domain": "sklearn",
                    "label": label,
                    "package": "scikit-learn",
                    "font_file": "",
                    "family": "scan",
                    "face": f"scan{i:04d}",
                    "background": "black",
                    "size": "",
                    "angle": "",
                    "split": split,
                    "parameters": json.dumps({"load_digits_index": int(i)}),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _tool_versions() -> dict[str, str]:
    import fontTools
    import PIL
    import scipy
    import sklearn
    from PIL import features

    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "Pillow": PIL.__version__,
        "FreeType": str(features.version("freetype2")),
        "fontTools": fontTools.version,
        "scikit-learn": sklearn.__version__,
    }


def build(ctx: BuildContext) -> dict[str, Any]:
    """Write the glyph-digits corpus into ``ctx.out``; return the manifest fields."""
    params = _params(ctx.profile)
    unknown = [e for e in ctx.extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"glyph-digits: unknown extra(s) {', '.join(unknown)}; valid: {', '.join(EXTRAS)}")
    out = ctx.out
    records, source_records, warnings = collect_faces(ctx, params)
    ctx.log(f"glyph-digits: {len(records)} candidate faces")
    reader_info = filter_faces(records, params, ctx.seed, ctx.log)

    patterns: dict[str, list[bg.Pattern]] = {}
    if not params.system_fonts:
        gimp = ctx.fetcher.fetch(PATTERNS_PACKAGE)
        loaded = bg.load_patterns(gimp.root / PATTERNS_DIR, gimp.root, gimp.name)
        for pattern in loaded:
            patterns.setdefault(pattern.category, []).append(pattern)
        source_records.append(gimp.source_record([p.member for p in loaded]))
    shared = "shared-backgrounds" in ctx.extras
    kinds = {d: SHARED_BACKGROUNDS if shared else DOMAIN_BACKGROUNDS[d] for d in FONT_DOMAINS}
    if "wallpapers" in ctx.extras:
        wallpapers = ctx.fetcher.fetch(WALLPAPERS_PACKAGE)
        loaded = bg.load_photos(
            wallpapers.root / WALLPAPERS_DIR, wallpapers.root, "Wallpaper", package=wallpapers.name
        )
        if not loaded:
            raise RuntimeError(f"{WALLPAPERS_PACKAGE}: no .jpg/.png under {WALLPAPERS_DIR}")
        patterns["Wallpaper"] = loaded
        source_records.append(wallpapers.source_record([p.member for p in loaded]))
        kinds = {d: k + ("Wallpaper",) if d == "decor" or shared else k for d, k in kinds.items()}

    for domain in DOMAINS:
        for digit in DIGITS:
            (out / domain / digit).mkdir(parents=True, exist_ok=True)
    jobs, plan_warnings = plan_renders(records, params, out, ctx.seed, kinds)
    warnings += plan_warnings
    ctx.log(f"glyph-digits: rendering {sum(sum(j.counts) for j in jobs)} images from {len(jobs)} faces")
    rows = render_all(jobs, patterns, ctx.workers)
    rows += write_sklearn(out, params, ctx.seed)
    source_records.append(
        {
            "kind": "wheel",
            "name": "scikit-learn",
            "version": _tool_versions()["scikit-learn"],
            "licence": ["BSD-3-Clause"],
            "non_free": False,
            "files_used": ["sklearn/datasets/data/digits.csv.gz"],
        }
    )
    for domain in DOMAINS:  # a domain without images (smoke has no hand/decor fonts) is not written
        if not any(r["domain"] == domain for r in rows):
            for digit in DIGITS:
                (out / domain / digit).rmdir()
            (out / domain).rmdir()
    rows.sort(key=lambda r: (DOMAINS.index(r["domain"]), r["label"], r["path"]))

    (out / "splits").mkdir()
    domains_present = [d for d in DOMAINS if any(r["domain"] == d for r in rows)]
    for domain in domains_present:
        for split in ("train", "test"):
            lines = [
                f"{r['path']} {r['label']}" for r in rows if r["domain"] == domain and r["split"] == split
            ]
            (out / "splits" / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    label_fields = [
        "path",
        "domain",
        "label",
        "package",
        "font_file",
        "family",
        "face",
        "background",
        "size",
        "angle",
        "split",
    ]
    _write_csv(out / "labels.csv", rows, label_fields)
    _write_csv(
        out / "fonts.csv",
        [r.row() for r in sorted(records, key=lambda r: (r.face.package, r.face.member))],
        [
            "face_id",
            "package",
            "font_file",
            "family",
            "face",
            "domain",
            "split",
            "kept",
            "reason",
            "digits_read",
        ],
    )
    provenance = [
        {
            "path": r["path"],
            "sources": ";".join(
                s
                for s in (
                    f"{r['package']}:{r['font_file']}" if r["font_file"] else r["package"],
                    r["background"] if ":" in r["background"] else "generated",
                )
                if s
            ),
            "parameters": r["parameters"],
        }
        for r in rows
    ]
    _write_csv(out / "provenance.csv", provenance, ["path", "sources", "parameters"])

    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (domain, split), n in sorted(Counter((r["domain"], r["split"]) for r in rows).items()):
        per_class = Counter(r["label"] for r in rows if r["domain"] == domain and r["split"] == split)
        counts.setdefault(domain, {})[split] = {str(k): per_class[k] for k in sorted(per_class)} | {
            "total": n
        }
    kept = Counter((r.domain, r.split) for r in records if r.kept)
    return {
        "builder": "glyph_digits",
        "parameters": {
            **asdict(params),
            "domains": domains_present,
            "backgrounds": kinds,
            "shared_backgrounds": shared,
            **reader_info,
        },
        "sources": source_records,
        "tool_versions": _tool_versions(),
        "counts": counts,
        "faces": {
            "candidates": len(records),
            "kept": sum(r.kept for r in records),
            "kept_per_domain_split": {f"{d}/{s}": n for (d, s), n in sorted(kept.items())},
        },
        "images": len(rows),
        "warnings": warnings,
    }


BUILDER = CorpusBuilder(
    name=NAME,
    description="ten digit classes in six visual domains (sklearn scans, five font styles), 32x32 RGB",
    build=build,
    sources=sources,
)
