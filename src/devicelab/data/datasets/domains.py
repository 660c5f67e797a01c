"""Domain-folder image data sets: PACS, Office-Home, VLCS, DomainNet and the offline ``glyph-digits`` corpus.

All share the DomainBed layout ``<root>/<domain>/<class>/<image>``; some ship split lists of lines
``<domain>/<class>/<file> <label>``:

- DomainNet and glyph-digits: ``<domain>_{train,test}.txt`` (0-based labels; at the root or in ``splits/``);
- PACS: ``<domain>_{train,crossval,test}_kfold.txt`` (1-based labels); ``test`` is the whole domain.

Where no lists exist, ``train`` / ``val`` are a seeded 90/10 split per class and ``test`` is the whole domain
(``specs/fed-dg.md`` §6: a held-out domain is tested in full). Class indices follow the sorted class names,
which is also the order of the official lists. Images are decoded with Pillow, resized on the shorter side
to ``image_size`` and centre-cropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val", "test", "all")
NOT_DOMAINS = {"splits", "features", "__MACOSX"}


@dataclass(frozen=True)
class DomainLayout:
    """A published domain data set: its domain folders, class folders (if fixed) and list style."""

    name: str
    domains: tuple[str, ...]
    classes: tuple[str, ...] | None = None
    list_style: str | None = None  # "kfold" (PACS), "train_test" (DomainNet) or None
    lists_required: bool = False
    aliases: tuple[tuple[str, str], ...] = ()  # (accepted folder name, canonical domain name)


KNOWN_LAYOUTS: tuple[DomainLayout, ...] = (
    DomainLayout(
        "PACS",
        ("art_painting", "cartoon", "photo", "sketch"),
        ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person"),
        list_style="kfold",
    ),
    DomainLayout(
        "Office-Home",
        ("Art", "Clipart", "Product", "Real World"),
        aliases=(("Real_World", "Real World"),),
    ),
    DomainLayout(
        "VLCS", ("Caltech101", "LabelMe", "SUN09", "VOC2007"), ("bird", "car", "chair", "dog", "person")
    ),
    DomainLayout(
        "DomainNet",
        ("clipart", "infograph", "painting", "quickdraw", "real", "sketch"),
        list_style="train_test",
        lists_required=True,
    ),
)


class DatasetLayoutError(FileNotFoundError):
    """The folder does not have the layout the loader expects; the message names what is missing."""


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"data set root {root} does not exist or is not a folder")
    return root


def detect_layout(root: Path) -> DomainLayout:
    """The known layout whose domain folders appear under ``root``; otherwise a generic DomainBed layout
    (every sub-folder holding class folders, e.g. ``glyph-digits``). A known layout missing some of its
    domain folders is an error naming them."""
    root = _check_root(root)
    present = set(_subfolders(root))

    def found(layout: DomainLayout) -> set[str]:
        aliases = dict(layout.aliases)
        return {aliases.get(name, name) for name in present} & set(layout.domains)

    best = max(KNOWN_LAYOUTS, key=lambda layout: len(found(layout)))  # "sketch" is in PACS and DomainNet
    if found(best):
        missing = [d for d in best.domains if d not in found(best)]
        if missing:
            raise DatasetLayoutError(
                f"{root} looks like {best.name} ({len(found(best))} of {len(best.domains)} domain folders) "
                f"but is missing the domain folder(s): {', '.join(missing)}"
            )
        return best
    domains = tuple(
        name for name in sorted(present - NOT_DOMAINS) if any(p.is_dir() for p in (root / name).iterdir())
    )
    if not domains:
        raise DatasetLayoutError(f"{root} holds no domain folders (<root>/<domain>/<class>/<image>)")
    return DomainLayout("folders", domains, list_style="train_test")


def _domain_folder(root: Path, layout: DomainLayout, domain: str) -> Path:
    if domain not in layout.domains:
        raise ValueError(
            f"unknown domain {domain!r} in {root} ({layout.name}); valid: {', '.join(layout.domains)}"
        )
    for alias, canonical in layout.aliases:
        if canonical == domain and not (root / domain).is_dir() and (root / alias).is_dir():
            return root / alias
    return root / domain


def list_domains(root: Path) -> list[str]:
    """The domain names of the data set at ``root`` (published order for known data sets, else sorted)."""
    return list(detect_layout(root).domains)


def class_names(root: Path) -> list[str]:
    """Class names in label order (sorted folder names; the fixed list of a known data set).

    Checks that every domain has every class folder and names the missing (domain, class) pairs.
    """
    root = _check_root(root)
    layout = detect_layout(root)
    per_domain = {d: set(_subfolders(_domain_folder(root, layout, d))) for d in layout.domains}
    classes = list(layout.classes) if layout.classes else sorted(set().union(*per_domain.values()))
    missing = [f"{d}/{c}" for d, found in per_domain.items() for c in classes if c not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (f" ... ({len(missing)} in all)" if len(missing) > 20 else "")
        raise DatasetLayoutError(f"{root} ({layout.name}): missing class folder(s): {shown}")
    if not classes:
        raise DatasetLayoutError(f"{root} ({layout.name}): no class folders under the domains")
    return classes


def _find_list(root: Path, filename: str) -> Path | None:
    for folder in (root / "splits", root):
        if (folder / filename).is_file():
            return folder / filename
    return None


def _read_list(path: Path, root: Path, classes: list[str], label_offset: int) -> list[tuple[str, int]]:
    """Parse ``<relpath> <label>`` lines; the label must agree with the class folder of the path."""
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetLayoutError(f"{path}:{number}: expected '<path> <label>', got {line!r}")
        rel, label = parts[0], int(parts[1]) - label_offset
        folder_class = Path(rel).parts[-2] if len(Path(rel).parts) >= 2 else None
        if not 0 <= label < len(classes) or (
            folder_class in classes and classes.index(folder_class) != label
        ):
            raise DatasetLayoutError(
                f"{path}:{number}: label {parts[1]} does not match the class folder of {rel!r} "
                f"(expected {classes.index(folder_class) + label_offset if folder_class in classes else '?'})"
            )
        items.append((rel, label))
    missing = [rel for rel, _ in items if not (root / rel).is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{path}: {len(missing)} of {len(items)} listed image(s) are missing under {root}, "
            f"e.g. {missing[0]}"
        )
    return items


def _scan_domain(root: Path, folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    items = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        items += [(p.relative_to(root).as_posix(), label) for p in files]
    if not items:
        raise DatasetLayoutError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    return items


def _seeded_holdout(items: list[tuple[str, int]], seed: int, fraction: float = 0.1) -> set[str]:
    """A seeded ``fraction`` of each class (at least one image where a class has two or more)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 90_10]))
    held = set()
    labels = np.array([label for _, label in items])
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        n = int(round(fraction * len(idx))) or (1 if len(idx) > 1 else 0)
        held.update(items[i][0] for i in rng.permutation(idx)[:n])
    return held


def domain_files(root: Path, domain: str, split: str = "train", seed: int = 0) -> list[tuple[str, int]]:
    """(path relative to ``root``, label) of one domain's split, without decoding images.

    ``split``: ``train`` / ``test`` from the published lists; PACS also has ``val`` (crossval); without lists,
    ``train`` / ``val`` are a seeded 90/10 split per class and ``test`` is the whole domain; ``all`` is every
    image of the domain.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
    root = _check_root(root)
    layout = detect_layout(root)
    folder = _domain_folder(root, layout, domain)
    classes = class_names(root)
    if split == "all":
        return _scan_domain(root, folder, classes)
    if layout.list_style == "kfold":
        name = {"train": "train", "val": "crossval", "test": "test"}[split]
        path = _find_list(root, f"{domain}_{name}_kfold.txt")
        if path is not None:
            return _read_list(path, root, classes, label_offset=1)
    elif layout.list_style == "train_test":
        path = _find_list(root, f"{domain}_{split}.txt") if split != "val" else None
        if path is not None:
            return _read_list(path, root, classes, label_offset=0)
        if split == "val" and _find_list(root, f"{domain}_train.txt") is not None:
            raise ValueError(
                f"{root} ({layout.name}) has train/test lists and no validation split; use train or test"
            )
        if layout.lists_required or _find_list(root, f"{domain}_train.txt") is not None:
            raise DatasetLayoutError(
                f"{root} ({layout.name}): missing the split list {domain}_{split}.txt (looked in {root} and "
                f"{root / 'splits'})"
            )
    items = _scan_domain(root, folder, classes)
    if split == "test":
        return items
    held = _seeded_holdout(items, seed)
    return [item for item in items if (item[0] in held) == (split == "val")]


def load_image(path: Path, image_size: int) -> np.ndarray:
    """Decode one image as RGB uint8 (image_size, image_size, 3): shorter side resized, centre crop."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        if (w, h) != (image_size, image_size):
            scale = image_size / min(w, h)
            new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
            img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
            img = img.crop((left, top, left + image_size, top + image_size))
        return np.asarray(img, dtype=np.uint8)


def check_images(root: Path, domains: list[str] | None = None) -> int:
    """Check that every image of ``domains`` (default: all) decodes, before any training: Pillow's ``verify``
    on each file (headers and checksums, no pixel decoding). Raises :class:`DatasetLayoutError` naming the
    first bad file; returns the number of images checked."""
    root = Path(root)
    count = 0
    for domain in domains or list_domains(root):
        for rel, _ in domain_files(root, domain, "all"):
            try:
                with Image.open(root / rel) as img:
                    img.verify()
            except (OSError, SyntaxError, ValueError) as e:
                raise DatasetLayoutError(f"{root / rel}: cannot decode image ({e})") from None
            count += 1
    return count


def load_domain(
    root: Path, domain: str, split: str = "train", image_size: int = 32, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One domain's split as uint8 images (N, image_size, image_size, 3) and int64 labels (N,).

    See :func:`domain_files` for the meaning of ``split`` per data set.
    """
    root = Path(root)
    items = domain_files(root, domain, split, seed=seed)
    images = np.empty((len(items), image_size, image_size, 3), dtype=np.uint8)
    for i, (rel, _) in enumerate(items):
        try:
            images[i] = load_image(root / rel, image_size)
        except (OSError, SyntaxError, ValueError) as e:
            raise DatasetLayoutError(f"{root / rel}: cannot decode image ({e})") from None
    labels = np.array([label for _, label in items], dtype=np.int64)
    return images, labels
