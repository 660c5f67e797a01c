"""Domain-folder loaders on fake PACS / Office-Home / DomainNet trees built here."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devicelab.data.datasets.domains import (
    DatasetLayoutError,
    class_names,
    detect_layout,
    domain_files,
    list_domains,
    load_domain,
)

PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
PACS_CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")


def _image(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 7)).save(path)


def make_tree(root: Path, domains, classes, per_class: int = 3, suffix: str = ".jpg") -> None:
    for d, domain in enumerate(domains):
        for c, name in enumerate(classes):
            for k in range(per_class):
                _image(root / domain / name / f"pic_{k:03d}{suffix}", (d * 40 + c * 10 + k) % 256)


def test_pacs_without_lists_uses_a_seeded_90_10_split(tmp_path):
    make_tree(tmp_path, PACS_DOMAINS, PACS_CLASSES, per_class=10)
    assert detect_layout(tmp_path).name == "PACS"
    assert list_domains(tmp_path) == list(PACS_DOMAINS)
    assert class_names(tmp_path) == list(PACS_CLASSES)
    train, train_labels = load_domain(tmp_path, "cartoon", "train", image_size=24)
    val = domain_files(tmp_path, "cartoon", "val")
    everything = domain_files(tmp_path, "cartoon", "all")
    assert train.shape == (63, 24, 24, 3) and train.dtype == np.uint8 and train_labels.dtype == np.int64
    assert len(val) == 7 and {p for p, _ in val}.isdisjoint(p for p, _ in domain_files(tmp_path, "cartoon"))
    assert domain_files(tmp_path, "cartoon", "test") == everything and len(everything) == 70
    assert domain_files(tmp_path, "cartoon", "val", seed=0) == val
    assert domain_files(tmp_path, "cartoon", "val", seed=1) != val


def test_pacs_kfold_lists_are_one_based(tmp_path):
    make_tree(tmp_path, PACS_DOMAINS, PACS_CLASSES, per_class=2)
    lines = [f"photo/{name}/pic_000.jpg {c + 1}" for c, name in enumerate(PACS_CLASSES)]
    (tmp_path / "photo_train_kfold.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "photo_crossval_kfold.txt").write_text("photo/house/pic_001.jpg 6\n")
    images, labels = load_domain(tmp_path, "photo", "train", image_size=16)
    assert labels.tolist() == list(range(7)) and images.shape == (7, 16, 16, 3)
    assert domain_files(tmp_path, "photo", "val") == [("photo/house/pic_001.jpg", 5)]
    (tmp_path / "photo_crossval_kfold.txt").write_text("photo/house/pic_001.jpg 2\n")
    with pytest.raises(DatasetLayoutError, match="photo_crossval_kfold.txt:1"):
        domain_files(tmp_path, "photo", "val")


def test_missing_domain_folder_is_named(tmp_path):
    make_tree(tmp_path, PACS_DOMAINS[:3], PACS_CLASSES, per_class=1)
    with pytest.raises(DatasetLayoutError, match="sketch"):
        list_domains(tmp_path)


def test_missing_class_folder_is_named(tmp_path):
    make_tree(tmp_path, PACS_DOMAINS, PACS_CLASSES, per_class=1)
    for p in (tmp_path / "sketch" / "giraffe").iterdir():
        p.unlink()
    (tmp_path / "sketch" / "giraffe").rmdir()
    with pytest.raises(DatasetLayoutError, match="sketch/giraffe"):
        class_names(tmp_path)


def test_office_home_accepts_real_world_with_underscore(tmp_path):
    make_tree(tmp_path, ("Art", "Clipart", "Product", "Real_World"), ("Alarm_Clock", "Bike"), per_class=2)
    assert list_domains(tmp_path) == ["Art", "Clipart", "Product", "Real World"]
    images, labels = load_domain(tmp_path, "Real World", "all", image_size=8)
    assert images.shape == (4, 8, 8, 3) and labels.tolist() == [0, 0, 1, 1]


def test_domainnet_needs_its_lists(tmp_path):
    domains = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
    make_tree(tmp_path, domains, ("aircraft_carrier", "zebra"), per_class=2)
    with pytest.raises(DatasetLayoutError, match="clipart_train.txt"):
        domain_files(tmp_path, "clipart", "train")
    (tmp_path / "clipart_train.txt").write_text(
        "clipart/zebra/pic_000.jpg 1\nclipart/aircraft_carrier/pic_001.jpg 0\n"
    )
    (tmp_path / "clipart_test.txt").write_text("clipart/zebra/pic_009.jpg 1\n")
    _, labels = load_domain(tmp_path, "clipart", "train")
    assert labels.tolist() == [1, 0]
    with pytest.raises(DatasetLayoutError, match="1 of 1 listed image"):
        domain_files(tmp_path, "clipart", "test")
    with pytest.raises(ValueError, match="no validation split"):
        domain_files(tmp_path, "clipart", "val")


def test_generic_folders_with_split_lists(tmp_path):
    """The glyph-digits layout: any domain names, lists in ``splits/``."""
    make_tree(tmp_path, ("ink", "paper"), [str(d) for d in range(3)], per_class=2, suffix=".png")
    (tmp_path / "splits").mkdir()
    for domain in ("ink", "paper"):
        (tmp_path / "splits" / f"{domain}_train.txt").write_text(
            "".join(f"{domain}/{d}/pic_000.png {d}\n" for d in range(3))
        )
        (tmp_path / "splits" / f"{domain}_test.txt").write_text(
            "".join(f"{domain}/{d}/pic_001.png {d}\n" for d in range(3))
        )
    assert list_domains(tmp_path) == ["ink", "paper"]
    images, labels = load_domain(tmp_path, "paper", "test", image_size=32)
    assert images.shape == (3, 32, 32, 3) and labels.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="valid: ink, paper"):
        load_domain(tmp_path, "sketch")
    with pytest.raises(ValueError, match="train, val, test, all"):
        load_domain(tmp_path, "ink", "dev")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        list_domains(tmp_path / "nowhere")
