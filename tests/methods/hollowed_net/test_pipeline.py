"""Spec §13.8: loaders and tools — subjects, pipeline folders, the tiny pipeline, the tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from devicelab.data.datasets.domains import DatasetLayoutError
from devicelab.methods.hollowed_net.data import read_subjects
from devicelab.methods.hollowed_net.pipeline import (
    build_clip_tokenizer,
    build_tiny_pipeline,
    validate_pipeline_folder,
)

WORDS = (
    "a an two small large red green blue circle circles ring rings on at the left right background".split()
)

PROMPTS_AND_CLASSES = """Classes
subject_name,class
backpack,backpack
dog2,dog

Prompts
Object Prompts
prompt_list = [
'a {0} {1} in the jungle'.format(unique_token, class_token),
'a {0} {1} on the beach'.format(unique_token, class_token),
]

Live Subject Prompts
prompt_list = [
'a {0} {1} wearing a red hat'.format(unique_token, class_token),
'__import__("os").system("false") {0} {1}'.format(unique_token, class_token),
]
"""


def test_dreambooth_layout_parses_without_eval(tmp_path):
    from PIL import Image

    (tmp_path / "prompts_and_classes.txt").write_text(PROMPTS_AND_CLASSES)
    for name, numbers in (("backpack", (0, 2, 5)), ("dog2", (1, 3))):  # numbering with gaps
        (tmp_path / name).mkdir()
        for n in numbers:
            Image.new("RGB", (40, 30), (n * 20, 0, 0)).save(tmp_path / name / f"{n:02d}.jpg")
    subjects = read_subjects(tmp_path)
    assert [s.subject_id for s in subjects] == ["backpack", "dog2"]
    assert [s.class_token for s in subjects] == ["backpack", "dog"]
    assert [p.name for p in subjects[0].images] == ["00.jpg", "02.jpg", "05.jpg"]
    assert [p["prompt"] for p in subjects[0].eval_prompts] == [
        "a sks backpack in the jungle",
        "a sks backpack on the beach",
    ]
    assert subjects[1].eval_prompts[0]["prompt"] == "a sks dog wearing a red hat"  # live subject prompts
    assert subjects[1].eval_prompts[1]["prompt"].startswith("__import__")  # kept as text, never run
    (tmp_path / "backpack" / "00.jpg").unlink()
    for p in (tmp_path / "dog2").iterdir():
        p.unlink()
    with pytest.raises(DatasetLayoutError, match="dog2 holds no images"):
        read_subjects(tmp_path)


def test_glyph_world_subjects_parse(glyph_world):
    subjects = read_subjects(glyph_world)
    assert len(subjects) == 1 and subjects[0].instance_prompt == "a sks circle"
    assert len(subjects[0].images) == 5 and subjects[0].eval_prompts[0]["requests"]["shape"] == "circle"


def test_generated_tokenizer_maps_each_word_to_one_token(tmp_path):
    tok = build_clip_tokenizer(WORDS, tmp_path)
    for word in [*WORDS, "sks", "zwx"]:
        ids = tok(word).input_ids
        assert len(ids) == 3, (word, tok.convert_ids_to_tokens(ids))  # <start> word <end>
    ids = tok("two small red rings on the left").input_ids
    assert len(ids) == 9
    with pytest.raises(ValueError, match="'r2d2'"):
        build_clip_tokenizer(["r2d2"], tmp_path / "bad")


def test_tiny_pipeline_survives_save_and_load_and_generates(tmp_path):
    from diffusers import StableDiffusionPipeline

    from devicelab.methods.hollowed_net.pipeline import TinySDConfig

    sizes = TinySDConfig(vae_channels=(8, 16, 16), unet_channels=(8, 16, 16, 16))
    pipe = build_tiny_pipeline(WORDS, tmp_path / "tok", sizes)
    pipe.save_pretrained(str(tmp_path / "model"), safe_serialization=True)
    index = validate_pipeline_folder(tmp_path / "model")
    assert index["safety_checker"] == [None, None]
    loaded = StableDiffusionPipeline.from_pretrained(str(tmp_path / "model"), local_files_only=True)
    image = loaded(
        "a red circle", num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0)
    ).images
    assert image.shape == (1, 32, 32, 3) and np.isfinite(image).all()


def test_pipeline_validator_names_the_problem(tmp_path):
    from devicelab.methods.hollowed_net.pipeline import TinySDConfig

    with pytest.raises(FileNotFoundError, match="model_index.json"):
        validate_pipeline_folder(tmp_path)
    sizes = TinySDConfig(vae_channels=(8, 16, 16), unet_channels=(8, 16, 16, 16))
    build_tiny_pipeline(WORDS, tmp_path / "tok", sizes).save_pretrained(str(tmp_path / "m"))
    weights = tmp_path / "m" / "vae" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ValueError, match="vae: only .bin"):
        validate_pipeline_folder(tmp_path / "m")
    weights.with_suffix(".bin").rename(weights)
    import shutil

    shutil.rmtree(tmp_path / "m" / "scheduler")
    with pytest.raises(FileNotFoundError, match="scheduler is missing"):
        validate_pipeline_folder(tmp_path / "m")
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    del index["tokenizer"]
    (tmp_path / "m" / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="key 'tokenizer'"):
        validate_pipeline_folder(tmp_path / "m")


def test_captioned_reader_names_the_bad_line(tmp_path):
    from devicelab.methods.hollowed_net.data import read_captioned

    (tmp_path / "metadata.jsonl").write_text(
        '{"file_name": "a.png", "text": "a red circle"}\n{"text": "x"}\n'
    )
    with pytest.raises(ValueError, match=r"metadata.jsonl:2: key 'file_name'"):
        read_captioned(tmp_path)
