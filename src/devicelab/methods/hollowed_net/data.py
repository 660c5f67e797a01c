"""Readers for the captioned base images (paths, read lazily) and the subject sets (glyph-world, DreamBooth).

Spec §10.2: a loader checks the layout and names what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.hollowed_net.config import HollowedNetConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ATTRIBUTES = ("shape", "color", "bg", "texture", "position", "size", "count")


@dataclass(frozen=True)
class CaptionedImage:
    path: Path
    text: str
    attributes: dict[str, Any]


def read_captioned(split_dir: str | Path) -> list[CaptionedImage]:
    """``<split>/metadata.jsonl`` rows ``{"file_name", "text", <attributes>}`` (Hugging Face imagefolder)."""
    split_dir = Path(split_dir)
    meta = split_dir / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing (captioned image folder)")
    out = []
    for i, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta}:{i}: not valid JSON ({e})") from None
        for key in ("file_name", "text"):
            if key not in row:
                raise ValueError(f"{meta}:{i}: key {key!r} is missing")
        path = split_dir / row["file_name"]
        attrs = {k: v for k, v in row.items() if k not in ("file_name", "text")}
        out.append(CaptionedImage(path, str(row["text"]), attrs))
    if not out:
        raise ValueError(f"{meta}: no rows")
    return out


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """RGB images, short side resized and centre-cropped to ``size``: (N, 3, size, size) uint8."""
    from PIL import Image

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                if s != size:
                    im = im.resize((size, size), Image.BICUBIC)
                out[i] = np.asarray(im)
        except OSError as e:
            raise ValueError(f"{p}: unreadable image ({e})") from None
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


@dataclass
class Subject:
    """One personalisation subject: its images, class token, instance prompt and evaluation prompts."""

    subject_id: str
    class_token: str
    instance_prompt: str
    images: list[Path]
    eval_prompts: list[dict[str, Any]] = field(default_factory=list)  # {"prompt", "requests"}


def read_subjects(root: str | Path, identifier: str = "sks") -> list[Subject]:
    """A glyph-world ``subjects/`` folder (or its parent) or a DreamBooth ``dataset/`` root.

    Reads through the shared :class:`devicelab.data.datasets.dreambooth.SubjectSet` (which parses
    ``prompts_and_classes.txt`` without evaluating it, and globs images since numbering has gaps).
    """
    from devicelab.data.datasets.dreambooth import SubjectSet, subject_image_paths

    root = Path(root)
    if not (root / "subjects.csv").is_file() and (root / "subjects" / "subjects.csv").is_file():
        root = root / "subjects"
    subject_set = SubjectSet(root, identifier)
    return [
        Subject(
            s.subject_id,
            s.class_token,
            s.instance_prompt,
            subject_image_paths(s.folder),
            list(s.eval_prompts),
        )
        for s in subject_set.subjects
    ]


def strip_identifier(prompt: str, identifiers: tuple[str, ...] = ("sks", "zwx")) -> str:
    """The prompt with the rare identifier removed (CLIP-T compares against this, spec §10.1)."""
    return " ".join(w for w in prompt.split() if w not in identifiers)


def subject_images(subject: Subject, size: int) -> torch.Tensor:
    """A subject's images at ``size`` in the model's range: (N, 3, size, size) float in [-1, 1]."""
    return to_model_range(load_images(subject.images, size))


def resolve_corpus(config: HollowedNetConfig, ctx: RunContext) -> Path | None:
    """The glyph-world folder a run reads (``corpus_dir``, else the built corpus); None when ``--data`` holds
    the subjects of a local base model."""
    if config.corpus_dir:
        return Path(config.corpus_dir)
    if config.base in ("tiny-sd", "random-tiny") or ctx.data_path is None:
        return ctx.corpus("glyph-world")
    return None
