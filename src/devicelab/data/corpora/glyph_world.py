"""``glyph-world``: captioned 32x32 procedural scenes for a tiny text-to-image model, plus held-out subjects.

``specs/corpora.md`` (glyph-world) and ``specs/hollowed-net.md`` §10.1. Base images are flat-coloured
shapes on textured backgrounds with one caption template over a closed vocabulary; a *subject* is one fixed
shape with a multi-colour fill no base image has, in the DreamBooth layout (5 images, instance prompt
``a sks <class>``), with 10 evaluation prompts that each change the background, texture, position, size or
count and store the attributes they request. Nothing third-party: numpy and Pillow draw everything.

Layout::

    base/{train,val}/<nnnnnn>.png + metadata.jsonl   {"file_name", "text", shape, color, bg, texture, ...}
    subjects/<subject_id>/{00..04}.png
    subjects/subjects.csv  subjects/eval_prompts.jsonl  vocab.json  provenance.csv
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from devicelab.core.seeding import child_rng
from devicelab.data.corpora import BuildContext, CorpusBuilder
from devicelab.data.corpora._workers import worker_pool
from devicelab.data.images.shapes import (
    COLOURS,
    COUNTS,
    PLURALS,
    POSITIONS,
    SHAPES,
    SIZES,
    SUBJECT_FILLS,
    TEXTURES,
    render_scene,
)

NAME = "glyph-world"
IDENTIFIER = "sks"
CAPTION_TEMPLATE = "{count} {size} {color} {shape} on a {bg} {texture} background at the {position}"
SUBJECT_TEMPLATE = (
    "{count} {size} " + IDENTIFIER + " {shape} on a {bg} {texture} background at the {position}"
)
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "color": tuple(COLOURS),
    "bg": tuple(COLOURS),
    "texture": TEXTURES,
    "position": POSITIONS,
    "size": SIZES,
    "count": COUNTS,
}
EVAL_FACTORS = ("bg", "texture", "position", "size", "count")
# (subject id, class token = shape, fill, colours): a pattern no base image has
SUBJECTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("radial_star", "star", "radial", ("red", "yellow", "blue")),
    ("checkered_ring", "ring", "checkered", ("black", "white")),
    ("split_circle", "circle", "split", ("blue", "orange")),
    ("striped_square", "square", "striped", ("green", "purple")),
    ("outlined_triangle", "triangle", "outlined", ("purple", "yellow")),
    ("dotted_hexagon", "hexagon", "dotted", ("orange", "blue")),
    ("radial_diamond", "diamond", "radial", ("purple", "white", "green")),
    ("checkered_cross", "cross", "checkered", ("red", "white")),
    ("striped_circle", "circle", "striped", ("yellow", "black")),
    ("outlined_star", "star", "outlined", ("white", "red")),
)
assert all(fill in SUBJECT_FILLS for _, _, fill, _ in SUBJECTS)


@dataclass(frozen=True)
class GlyphWorldParams:
    train_images: int = 10_000
    val_images: int = 1_000
    subjects: int = 6
    images_per_subject: int = 5
    eval_prompts_per_subject: int = 10
    image_size: int = 32


PROFILES: dict[str, GlyphWorldParams] = {
    "smoke": GlyphWorldParams(train_images=48, val_images=16, subjects=2),
    "quick": GlyphWorldParams(),
    "full": GlyphWorldParams(train_images=100_000, val_images=5_000, subjects=10),
}


def caption(attributes: dict[str, str], subject: bool = False) -> str:
    """The caption of a scene: "two small red circles on a blue striped background at the left"."""
    plural = attributes["count"] == "two"
    words = {
        **attributes,
        "count": "two" if plural else "a",
        "shape": PLURALS[attributes["shape"]] if plural else attributes["shape"],
    }
    text = (SUBJECT_TEMPLATE if subject else CAPTION_TEMPLATE).format(**words)
    return re.sub(r"\ba (?=[aeiou])", "an ", text)  # "on an orange ..."


def vocabulary() -> dict[str, Any]:
    """``vocab.json``: every caption word with a token id (special tokens first), attributes and templates."""
    words = set(CAPTION_TEMPLATE.replace("{", " ").replace("}", " ").split()) - set(ATTRIBUTES)
    words |= {"a", "an", "two"} | set(COLOURS) | set(TEXTURES) | set(POSITIONS) | set(SIZES)
    words |= set(SHAPES) | set(PLURALS.values())
    ordered = list(SPECIAL_TOKENS) + sorted(words)
    return {
        "version": 1,
        "template": CAPTION_TEMPLATE,
        "subject_template": SUBJECT_TEMPLATE,
        "identifier": IDENTIFIER,
        "special_tokens": list(SPECIAL_TOKENS),
        "words": sorted(words),
        "token_ids": {w: i for i, w in enumerate(ordered)},
        "attributes": {k: list(v) for k, v in ATTRIBUTES.items()},
        "plurals": PLURALS,
    }


def draw_attributes(rng: np.random.Generator) -> dict[str, str]:
    """A uniform draw of every attribute; the shape colour never equals the background colour."""
    attrs = {k: str(rng.choice(v)) for k, v in ATTRIBUTES.items()}
    while attrs["color"] == attrs["bg"]:
        attrs["bg"] = str(rng.choice(ATTRIBUTES["bg"]))
    return attrs


def _save(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG")


def render_base_items(folder: str, split: str, indices: range, seed: int, size: int) -> list[dict[str, Any]]:
    """Draw, render and write base images ``indices`` of a split; returns their metadata records."""
    records = []
    for i in indices:
        rng = child_rng(seed, "glyph-world", split, i)
        attrs = draw_attributes(rng)
        image = render_scene(
            attrs["shape"], attrs["color"], attrs["bg"], attrs["texture"], attrs["position"], attrs["size"],
            attrs["count"], rng, size,
        )  # fmt: skip
        name = f"{i:06d}.png"
        _save(image, Path(folder) / name)
        records.append({"file_name": name, "text": caption(attrs), **attrs})
    return records


def write_base(out: Path, split: str, n: int, seed: int, size: int, workers: int = 1) -> list[dict[str, Any]]:
    """``base/<split>/`` images and ``metadata.jsonl``; each image has its own generator, so any ``workers``
    gives the same files."""
    folder = out / "base" / split
    folder.mkdir(parents=True)
    chunk = 1000
    chunks = [range(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    if workers <= 1 or len(chunks) < 2:
        parts = [render_base_items(str(folder), split, c, seed, size) for c in chunks]
    else:
        with worker_pool(workers) as pool:
            parts = list(
                pool.map(render_base_items, *zip(*[(str(folder), split, c, seed, size) for c in chunks]))
            )
    records = [record for part in parts for record in part]
    with open(folder / "metadata.jsonl", "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return records


def _subject_background(rng: np.random.Generator, colours: tuple[str, ...]) -> str:
    choices = [c for c in COLOURS if c not in colours]
    return str(rng.choice(choices))


def write_subjects(
    out: Path, params: GlyphWorldParams, seed: int
) -> tuple[list[dict], list[dict], list[dict]]:
    """Subject folders, ``subjects.csv`` rows, evaluation prompts, and provenance rows."""
    subjects_dir = out / "subjects"
    subjects_dir.mkdir()
    rows, prompts, provenance = [], [], []
    for subject_id, shape, fill, colours in SUBJECTS[: params.subjects]:
        folder = subjects_dir / subject_id
        folder.mkdir()
        seen: dict[str, set[str]] = {factor: set() for factor in EVAL_FACTORS}
        for k in range(params.images_per_subject):
            rng = child_rng(seed, "subject", subject_id, k)
            attrs = {
                "shape": shape,
                "bg": _subject_background(rng, colours),
                "texture": str(rng.choice(TEXTURES)),
                "position": str(rng.choice(POSITIONS)),
                "size": SIZES[k % 2],
                "count": "one",
            }
            image = render_scene(
                shape,
                (fill, colours),
                attrs["bg"],
                attrs["texture"],
                attrs["position"],
                attrs["size"],
                "one",
                rng,
                params.image_size,
            )
            _save(image, folder / f"{k:02d}.png")
            for factor in EVAL_FACTORS:
                seen[factor].add(attrs[factor])
            provenance.append(
                {
                    "path": f"subjects/{subject_id}/{k:02d}.png",
                    "sources": "generated",
                    "parameters": json.dumps({**attrs, "fill": fill, "colours": list(colours)}),
                }
            )
        rows.append(
            {"subject_id": subject_id, "class_token": shape, "instance_prompt": f"a {IDENTIFIER} {shape}"}
        )
        used: set[str] = set()
        for j in range(params.eval_prompts_per_subject):
            factor = EVAL_FACTORS[j % len(EVAL_FACTORS)]
            for attempt in range(100):  # redraw until the prompt is new for this subject
                rng = child_rng(seed, "eval-prompt", subject_id, j, attempt)
                requests = {
                    "shape": shape,
                    "bg": _subject_background(rng, colours),
                    "texture": str(rng.choice(TEXTURES)),
                    "position": str(rng.choice(POSITIONS)),
                    "size": str(rng.choice(SIZES)),
                    "count": "one",
                }
                options = [v for v in ATTRIBUTES[factor] if v not in seen[factor]] or list(ATTRIBUTES[factor])
                if factor == "bg":
                    options = [c for c in options if c not in colours] or [requests["bg"]]
                requests[factor] = str(
                    rng.choice(options)
                )  # preferably a value the subject images never show
                prompt = caption(requests, subject=True)
                if prompt not in used:
                    break
            used.add(prompt)
            prompts.append(
                {"subject_id": subject_id, "prompt": prompt, "requests": requests, "changes": factor}
            )
    return rows, prompts, provenance


def build(ctx: BuildContext) -> dict[str, Any]:
    """Write the glyph-world corpus into ``ctx.out``; return the manifest fields."""
    if ctx.profile not in PROFILES:
        raise ValueError(f"glyph-world: unknown profile {ctx.profile!r}; valid: {', '.join(PROFILES)}")
    params = PROFILES[ctx.profile]
    out = ctx.out
    train = write_base(out, "train", params.train_images, ctx.seed, params.image_size, ctx.workers)
    val = write_base(out, "val", params.val_images, ctx.seed, params.image_size, ctx.workers)
    rows, prompts, subject_provenance = write_subjects(out, params, ctx.seed)
    with open(out / "subjects" / "subjects.csv", "w", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["subject_id", "class_token", "instance_prompt"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "subjects" / "eval_prompts.jsonl", "w") as f:
        for prompt in prompts:
            f.write(json.dumps(prompt) + "\n")
    (out / "vocab.json").write_text(json.dumps(vocabulary(), indent=2) + "\n")
    provenance = [
        {
            "path": f"base/{split}/{r['file_name']}",
            "sources": "generated",
            "parameters": json.dumps({k: r[k] for k in ATTRIBUTES}),
        }
        for split, records in (("train", train), ("val", val))
        for r in records
    ] + subject_provenance
    with open(out / "provenance.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "sources", "parameters"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(provenance)
    counts = {
        split: {
            attr: {v: sum(r[attr] == v for r in records) for v in values}
            for attr, values in ATTRIBUTES.items()
        }
        | {"total": len(records)}
        for split, records in (("train", train), ("val", val))
    }
    counts["subjects"] = {r["subject_id"]: params.images_per_subject for r in rows}
    counts["eval_prompts"] = len(prompts)
    import PIL

    return {
        "builder": "glyph_world",
        "parameters": {**asdict(params), "template": CAPTION_TEMPLATE, "identifier": IDENTIFIER},
        "sources": [
            {
                "kind": "generated",
                "name": "glyph-world",
                "version": "1",
                "licence": ["Apache-2.0"],
                "non_free": False,
                "files_used": [],
            }
        ],
        "tool_versions": {"numpy": np.__version__, "Pillow": PIL.__version__},
        "counts": counts,
        "warnings": [],
    }


BUILDER = CorpusBuilder(
    name=NAME,
    description="captioned 32x32 procedural shapes for a tiny text-to-image model, plus DreamBooth subjects",
    build=build,
)
