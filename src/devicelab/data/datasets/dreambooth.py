"""Subject sets for personalisation: the DreamBooth data set and glyph-world's ``subjects/`` folder.

DreamBooth (Ruiz et al., CVPR 2023; ``google/dreambooth``, root = its ``dataset/``):
``<root>/<subject>/NN.jpg``, 30 subjects of 4-6 images with gaps in the numbering, and
``prompts_and_classes.txt``: a ``Classes`` CSV section (``subject_name,class``) and two Python lists of 25
prompt templates (``'a {0} {1} in the jungle'.format(unique_token, class_token)``) for objects and for live
subjects (classes ``cat`` and ``dog``). The templates are extracted with a regular expression, **never
evaluated**.

glyph-world (``specs/hollowed-net.md`` §10.2): ``subjects/<id>/{00..04}.png``, ``subjects.csv``
(``subject_id, class_token, instance_prompt``) and ``eval_prompts.jsonl`` (``subject_id, prompt, requests``).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from devicelab.data.datasets.domains import DatasetLayoutError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LIVE_CLASSES = ("cat", "dog")
DEFAULT_IDENTIFIER = "sks"
_TEMPLATE = re.compile(r"""['"](.*?)['"]\s*\.format\(\s*unique_token\s*,\s*class_token\s*\)""")


def resize_centre_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bicubic) and crop the centre square."""
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def subject_image_paths(folder: Path) -> list[Path]:
    """The subject's image files sorted by name (numbering may have gaps)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetLayoutError(f"subject folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DatasetLayoutError(f"subject folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def load_subject(folder: Path, size: int | None = None) -> list[Image.Image]:
    """A subject's images as RGB PIL images (resized on the shorter side and centre-cropped if ``size``)."""
    images = []
    for path in subject_image_paths(folder):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except OSError as e:
            raise DatasetLayoutError(f"{path}: cannot decode image ({e})") from e
        images.append(resize_centre_crop(rgb, size) if size else rgb)
    return images


@dataclass(frozen=True)
class DreamBoothPrompts:
    """``prompts_and_classes.txt``: subject -> class, and the object / live-subject prompt templates."""

    classes: dict[str, str]
    object_templates: list[str]
    live_templates: list[str]

    def templates_for(self, class_token: str) -> list[str]:
        return self.live_templates if class_token in LIVE_CLASSES else self.object_templates


def read_prompts_and_classes(path: Path) -> DreamBoothPrompts:
    """Parse DreamBooth's ``prompts_and_classes.txt`` without evaluating any of it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetLayoutError(f"{path} is missing (DreamBooth's prompts_and_classes.txt)")
    text = path.read_text()
    if "Object Prompts" not in text or "Live Subject Prompts" not in text or "Classes" not in text:
        raise DatasetLayoutError(
            f"{path}: expected the sections Classes, Object Prompts, Live Subject Prompts"
        )
    classes_part, prompts_part = text.split("Prompts", 1)
    classes = {}
    for line in classes_part.splitlines():
        line = line.strip()
        if "," in line and line != "subject_name,class":
            subject, class_token = (s.strip() for s in line.split(",", 1))
            classes[subject] = class_token
    object_part, live_part = prompts_part.split("Live Subject Prompts", 1)
    object_templates = _TEMPLATE.findall(object_part)
    live_templates = _TEMPLATE.findall(live_part)
    if not classes or not object_templates or not live_templates:
        raise DatasetLayoutError(
            f"{path}: found {len(classes)} classes, {len(object_templates)} object and "
            f"{len(live_templates)} live "
            "prompt templates; each must be non-empty"
        )
    return DreamBoothPrompts(classes, object_templates, live_templates)


@dataclass
class Subject:
    """One subject: its folder, class token, instance prompt and evaluation prompts."""

    subject_id: str
    class_token: str
    folder: Path
    instance_prompt: str
    eval_prompts: list[dict[str, Any]] = field(default_factory=list)  # {"prompt", "requests"}

    def images(self, size: int | None = None) -> list[Image.Image]:
        return load_subject(self.folder, size)


class SubjectSet:
    """The subjects of a DreamBooth ``dataset/`` folder or of glyph-world's ``subjects/`` folder.

    ``identifier`` is the rare token of the instance prompt (``a sks dog``) for DreamBooth; glyph-world stores
    its prompts.
    """

    def __init__(self, root: Path, identifier: str = DEFAULT_IDENTIFIER):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"subject root {self.root} does not exist")
        if (self.root / "prompts_and_classes.txt").is_file():
            self.layout = "dreambooth"
            self.subjects = self._read_dreambooth(identifier)
        elif (self.root / "subjects.csv").is_file():
            self.layout = "glyph-world"
            self.subjects = self._read_glyph_world()
        else:
            raise DatasetLayoutError(
                f"{self.root}: neither prompts_and_classes.txt (DreamBooth) "
                "nor subjects.csv (glyph-world) found"
            )

    def _read_dreambooth(self, identifier: str) -> list[Subject]:
        prompts = read_prompts_and_classes(self.root / "prompts_and_classes.txt")
        missing = [s for s in prompts.classes if not (self.root / s).is_dir()]
        if missing:
            raise DatasetLayoutError(
                f"{self.root}: {len(missing)} of {len(prompts.classes)} subject folders listed in "
                f"prompts_and_classes.txt are missing: {', '.join(missing)}"
            )
        subjects = []
        for subject_id, class_token in prompts.classes.items():
            evals = [
                {"prompt": t.format(identifier, class_token), "requests": {"class": class_token}}
                for t in prompts.templates_for(class_token)
            ]
            subjects.append(
                Subject(
                    subject_id, class_token, self.root / subject_id, f"a {identifier} {class_token}", evals
                )
            )
        return subjects

    def _read_glyph_world(self) -> list[Subject]:
        with open(self.root / "subjects.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        needed = {"subject_id", "class_token", "instance_prompt"}
        if not rows or not needed <= set(rows[0]):
            raise DatasetLayoutError(
                f"{self.root / 'subjects.csv'}: needs the columns {', '.join(sorted(needed))}"
            )
        prompts_path = self.root / "eval_prompts.jsonl"
        if not prompts_path.is_file():
            raise DatasetLayoutError(f"{prompts_path} is missing")
        evals: dict[str, list[dict[str, Any]]] = {}
        for number, line in enumerate(prompts_path.read_text().splitlines(), start=1):
            if line.strip():
                record = json.loads(line)
                if "subject_id" not in record or "prompt" not in record:
                    raise DatasetLayoutError(f"{prompts_path}:{number}: needs subject_id and prompt")
                evals.setdefault(record["subject_id"], []).append(
                    {k: v for k, v in record.items() if k != "subject_id"}
                )
        missing = [r["subject_id"] for r in rows if not (self.root / r["subject_id"]).is_dir()]
        if missing:
            raise DatasetLayoutError(
                f"{self.root}: subject folder(s) listed in subjects.csv are missing: {', '.join(missing)}"
            )
        return [
            Subject(
                r["subject_id"],
                r["class_token"],
                self.root / r["subject_id"],
                r["instance_prompt"],
                evals.get(r["subject_id"], []),
            )
            for r in rows
        ]

    def __len__(self) -> int:
        return len(self.subjects)

    def __getitem__(self, subject_id: str) -> Subject:
        for subject in self.subjects:
            if subject.subject_id == subject_id:
                return subject
        raise KeyError(f"no subject {subject_id!r} in {self.root}; valid: {', '.join(self.ids)}")

    @property
    def ids(self) -> list[str]:
        return [s.subject_id for s in self.subjects]
