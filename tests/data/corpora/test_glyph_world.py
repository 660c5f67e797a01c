"""glyph-world: the smoke build is deterministic, in its layout, and readable by the loaders."""

import json

import numpy as np
import pytest

from devicelab.data import corpora
from devicelab.data.cache import read_manifest
from devicelab.data.corpora import glyph_world
from devicelab.data.datasets.captioned import load_captioned, load_vocab
from devicelab.data.datasets.dreambooth import SubjectSet
from devicelab.data.images import shapes


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return corpora.build_corpus(
        "glyph-world", "smoke", root=tmp_path_factory.mktemp("gw"), log=lambda s: None
    )


def test_smoke_is_deterministic(smoke, tmp_path):
    corpora.build_corpus("glyph-world", "smoke", root=tmp_path, log=lambda s: None)
    first = read_manifest("glyph-world", "smoke", root=smoke.parent.parent)["content_sha256"]
    assert first == read_manifest("glyph-world", "smoke", root=tmp_path)["content_sha256"]


def test_base_images_captions_and_vocab(smoke):
    params = glyph_world.PROFILES["smoke"]
    train = load_captioned(smoke, "train")
    assert len(train) == params.train_images and train.images.shape[1:] == (32, 32, 3)
    assert len(load_captioned(smoke, "val")) == params.val_images
    vocab = load_vocab(smoke)
    for text, attrs in zip(train.captions, train.attributes):
        assert set(attrs) == set(glyph_world.ATTRIBUTES)
        assert text == glyph_world.caption(attrs)
        assert attrs["color"] != attrs["bg"]
        assert all(word in vocab["token_ids"] for word in text.split()), text
    assert len(set(vocab["token_ids"].values())) == len(vocab["token_ids"])


def test_caption_template():
    attrs = {
        "shape": "circle",
        "color": "red",
        "bg": "blue",
        "texture": "striped",
        "position": "left",
        "size": "small",
        "count": "two",
    }
    assert glyph_world.caption(attrs) == "two small red circles on a blue striped background at the left"
    one = {**attrs, "count": "one", "bg": "orange", "shape": "cross"}
    assert glyph_world.caption(one) == "a small red cross on an orange striped background at the left"


def test_subjects_and_eval_prompts(smoke):
    subjects = SubjectSet(smoke / "subjects")
    params = glyph_world.PROFILES["smoke"]
    assert len(subjects) == params.subjects
    base_texts = set(load_captioned(smoke, "train").captions)
    for subject in subjects.subjects:
        assert subject.instance_prompt == f"a sks {subject.class_token}"
        assert len(subject.images()) == params.images_per_subject
        prompts = [p["prompt"] for p in subject.eval_prompts]
        assert len(prompts) == params.eval_prompts_per_subject and len(set(prompts)) == len(prompts)
        assert {p["changes"] for p in subject.eval_prompts} == set(glyph_world.EVAL_FACTORS)
        for p in subject.eval_prompts:
            assert p["requests"]["shape"] == subject.class_token
            assert glyph_world.caption(p["requests"], subject=True) == p["prompt"]
        assert not set(prompts) & base_texts and subject.instance_prompt not in base_texts
    lines = (smoke / "subjects" / "eval_prompts.jsonl").read_text().splitlines()
    assert all("requests" in json.loads(line) for line in lines)


def test_subject_fills_differ_from_flat_base_shapes():
    rng = np.random.default_rng(0)
    flat = shapes.render_scene("star", "red", "white", "plain", "center", "large", "one", rng)
    subject = shapes.render_scene(
        "star",
        ("radial", ("red", "yellow", "blue")),
        "white",
        "plain",
        "center",
        "large",
        "one",
        np.random.default_rng(0),
    )
    colours_in = {tuple(int(v) for v in px) for px in subject.reshape(-1, 3)}
    assert tuple(int(v) for v in flat[16, 16]) == shapes.COLOURS["red"]
    assert {shapes.COLOURS[c] for c in ("red", "yellow", "blue")} <= colours_in  # all three bands show
    assert shapes.COLOURS["yellow"] not in {tuple(int(v) for v in px) for px in flat.reshape(-1, 3)}


def test_cli_builds_the_smoke_corpus(tmp_path, monkeypatch):
    from devicelab.cli import main

    monkeypatch.setenv("DEVICELAB_DATA", str(tmp_path))
    assert main(["data", "build", "glyph-world", "--profile", "smoke", "--workers", "1"]) == 0
    assert (tmp_path / "glyph-world" / "smoke" / "manifest.json").is_file()
