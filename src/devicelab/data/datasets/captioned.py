"""Captioned image folders (the Hugging Face ``imagefolder`` layout), as written by ``glyph-world``.

``<root>/base/{train,val}/*.png`` with ``metadata.jsonl`` lines ``{"file_name", "text", <attributes>...}``
(``specs/corpora.md``, glyph-world; ``root`` may also be the ``base/`` folder itself). Returns images,
captions and the attribute dictionaries that train the prompt-fidelity evaluators.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.data.datasets.domains import DatasetLayoutError, load_image

SPLITS = ("train", "val")


@dataclass
class CaptionedImages:
    """One split: uint8 images (N, H, W, 3), captions (N) and attribute dicts (N)."""

    images: np.ndarray
    captions: list[str]
    attributes: list[dict[str, Any]]
    files: list[str]

    def __len__(self) -> int:
        return len(self.captions)


def split_folder(root: Path, split: str) -> Path:
    """``<root>/base/<split>`` or ``<root>/<split>``, whichever holds a ``metadata.jsonl``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
    root = Path(root)
    for folder in (root / "base" / split, root / split):
        if (folder / "metadata.jsonl").is_file():
            return folder
    raise DatasetLayoutError(
        f"{root}: no {split} metadata (looked for {root / 'base' / split / 'metadata.jsonl'} "
        f"and {root / split / 'metadata.jsonl'})"
    )


def read_metadata(folder: Path) -> list[dict[str, Any]]:
    """The records of ``metadata.jsonl``; each needs ``file_name`` and ``text`` and an existing image."""
    path = Path(folder) / "metadata.jsonl"
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetLayoutError(f"{path}:{number}: not JSON ({e.msg})") from e
        missing_keys = [k for k in ("file_name", "text") if k not in record]
        if missing_keys:
            raise DatasetLayoutError(f"{path}:{number}: missing key(s) {', '.join(missing_keys)}")
        records.append(record)
    missing = [r["file_name"] for r in records if not (Path(folder) / r["file_name"]).is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{path}: {len(missing)} of {len(records)} listed image(s) are missing, e.g. {missing[0]}"
        )
    return records


def load_captioned(root: Path, split: str = "train", image_size: int = 32) -> CaptionedImages:
    """Images, captions and attributes of one split of a captioned folder."""
    folder = split_folder(root, split)
    records = read_metadata(folder)
    images = np.empty((len(records), image_size, image_size, 3), dtype=np.uint8)
    for i, record in enumerate(records):
        try:
            images[i] = load_image(folder / record["file_name"], image_size)
        except OSError as e:
            raise DatasetLayoutError(f"{folder / record['file_name']}: cannot decode image ({e})") from e
    attributes = [{k: v for k, v in r.items() if k not in ("file_name", "text")} for r in records]
    return CaptionedImages(
        images, [r["text"] for r in records], attributes, [r["file_name"] for r in records]
    )


def load_vocab(root: Path) -> dict[str, Any]:
    """glyph-world's ``vocab.json`` (words, token ids, attribute values, caption template)."""
    path = Path(root) / "vocab.json"
    if not path.is_file():
        raise DatasetLayoutError(f"{path} is missing")
    vocab = json.loads(path.read_text())
    if "token_ids" not in vocab or "attributes" not in vocab:
        raise DatasetLayoutError(f"{path}: needs the keys token_ids and attributes")
    return vocab
