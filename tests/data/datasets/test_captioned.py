"""Captioned image folders (glyph-world base/ layout) on a fake tree built here."""

import json

import numpy as np
import pytest
from PIL import Image

from devicelab.data.datasets.captioned import load_captioned, load_vocab
from devicelab.data.datasets.domains import DatasetLayoutError


@pytest.fixture
def tree(tmp_path):
    folder = tmp_path / "base" / "val"
    folder.mkdir(parents=True)
    records = []
    for i, (shape, colour) in enumerate([("circle", (255, 0, 0)), ("ring", (0, 0, 255))]):
        Image.new("RGB", (32, 32), colour).save(folder / f"{i:06d}.png")
        records.append(
            {"file_name": f"{i:06d}.png", "text": f"a small {shape}", "shape": shape, "count": "one"}
        )
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def test_loads_images_captions_and_attributes(tree):
    data = load_captioned(tree, "val")
    assert data.images.shape == (2, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.captions == ["a small circle", "a small ring"]
    assert data.attributes[1] == {"shape": "ring", "count": "one"}
    assert tuple(data.images[0, 0, 0]) == (255, 0, 0)
    assert len(load_captioned(tree / "base", "val")) == 2  # the base/ folder itself works too


def test_missing_parts_are_named(tree):
    with pytest.raises(DatasetLayoutError, match="no train metadata"):
        load_captioned(tree, "train")
    (tree / "base" / "val" / "000001.png").unlink()
    with pytest.raises(DatasetLayoutError, match="1 of 2 listed image"):
        load_captioned(tree, "val")
    (tree / "base" / "val" / "metadata.jsonl").write_text('{"text": "a ring"}\n')
    with pytest.raises(DatasetLayoutError, match="metadata.jsonl:1: missing key"):
        load_captioned(tree, "val")
    with pytest.raises(DatasetLayoutError, match="vocab.json is missing"):
        load_vocab(tree)
