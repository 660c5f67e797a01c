"""DreamBooth and glyph-world subject folders: parsed without eval, numbering gaps allowed."""

import json

import pytest
from PIL import Image

from devicelab.data.datasets.domains import DatasetLayoutError
from devicelab.data.datasets.dreambooth import SubjectSet, load_subject, read_prompts_and_classes

PROMPTS = """Classes

subject_name,class
backpack,backpack
dog6,dog

Prompts

Object Prompts

prompt_list = [
'a {0} {1} in the jungle'.format(unique_token, class_token),
'a {0} {1} on top of pink fabric'.format(unique_token, class_token),
'a cube shaped {0} {1}'.format(unique_token, class_token)
]

Live Subject Prompts

prompt_list = [
'a {0} {1} in the jungle'.format(unique_token, class_token),
'a {0} {1} wearing a red hat'.format(unique_token, class_token)
]
"""


def _jpg(path, size=(60, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)


@pytest.fixture
def dreambooth(tmp_path):
    (tmp_path / "prompts_and_classes.txt").write_text(PROMPTS)
    for name in ("00", "01", "03", "05"):  # gaps, as in the real data set
        _jpg(tmp_path / "backpack" / f"{name}.jpg")
    for name in ("00", "02"):
        _jpg(tmp_path / "dog6" / f"{name}.jpg")
    return tmp_path


def test_prompts_are_parsed_not_evaluated(dreambooth):
    parsed = read_prompts_and_classes(dreambooth / "prompts_and_classes.txt")
    assert parsed.classes == {"backpack": "backpack", "dog6": "dog"}
    assert parsed.object_templates[2] == "a cube shaped {0} {1}"
    assert parsed.templates_for("dog") == ["a {0} {1} in the jungle", "a {0} {1} wearing a red hat"]


def test_subject_set_reads_dreambooth(dreambooth):
    subjects = SubjectSet(dreambooth)
    assert subjects.layout == "dreambooth" and subjects.ids == ["backpack", "dog6"]
    dog = subjects["dog6"]
    assert dog.instance_prompt == "a sks dog"
    assert [p["prompt"] for p in dog.eval_prompts] == [
        "a sks dog in the jungle",
        "a sks dog wearing a red hat",
    ]
    images = load_subject(dreambooth / "backpack", size=32)
    assert len(images) == 4 and all(im.size == (32, 32) and im.mode == "RGB" for im in images)
    assert load_subject(dreambooth / "dog6")[0].size == (60, 40)


def test_missing_subject_folder_is_named(dreambooth):
    for p in (dreambooth / "dog6").iterdir():
        p.unlink()
    (dreambooth / "dog6").rmdir()
    with pytest.raises(DatasetLayoutError, match="dog6"):
        SubjectSet(dreambooth)
    with pytest.raises(DatasetLayoutError, match="neither"):
        SubjectSet(dreambooth / "backpack")


def test_subject_set_reads_glyph_world_layout(tmp_path):
    root = tmp_path / "subjects"
    for k in range(5):
        _jpg(root / "radial_star" / f"{k:02d}.png", (32, 32))
    (root / "subjects.csv").write_text(
        "subject_id,class_token,instance_prompt\nradial_star,star,a sks star\n"
    )
    record = {
        "subject_id": "radial_star",
        "prompt": "two small sks stars on a green plain background at the top",
        "requests": {"count": "two", "bg": "green"},
    }
    (root / "eval_prompts.jsonl").write_text(json.dumps(record) + "\n")
    subjects = SubjectSet(root)
    star = subjects["radial_star"]
    assert subjects.layout == "glyph-world" and star.class_token == "star"
    assert star.eval_prompts == [{"prompt": record["prompt"], "requests": record["requests"]}]
    assert len(star.images()) == 5
    with pytest.raises(KeyError, match="radial_star"):
        subjects["ring"]
