"""CIFAR-10-C / CIFAR-100-C (and devicelab's ``glyph-digits-c``): one ``.npy`` per corruption, ``labels.npy``.

Layout (Hendrycks & Dietterich, ICLR 2019; ``specs/tta-lsa.md`` §6.4): ``<root>/<corruption>.npy`` of shape
(5 N, 32, 32, 3) uint8 with severities 1..5 stacked in blocks of N (N = 10,000 for CIFAR), and ``labels.npy``
of shape (5 N,) whose five blocks repeat the same N labels. Files are memory-mapped with
``allow_pickle=False``: a pickled or object array is refused, never unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devicelab.data.datasets.domains import DatasetLayoutError

SEVERITIES = (1, 2, 3, 4, 5)
CIFAR_C_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
NOT_CORRUPTIONS = {"labels"}


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetLayoutError(f"{path} is missing")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as e:
        raise DatasetLayoutError(
            f"{path}: not a plain numeric .npy ({e}); pickled or object arrays are never loaded"
        ) from e
    except OSError as e:
        raise DatasetLayoutError(f"{path}: unreadable .npy ({e})") from e


def list_corruptions(root: Path) -> list[str]:
    """Corruption names present under ``root`` (``<name>.npy`` files other than ``labels.npy``), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"CIFAR-C root {root} does not exist or is not a folder")
    return sorted(p.stem for p in root.glob("*.npy") if p.stem not in NOT_CORRUPTIONS)


def load_labels(root: Path) -> np.ndarray:
    """``labels.npy`` as int64 (5 N,), checked to repeat one block of N labels five times."""
    labels = _load_npy(Path(root) / "labels.npy")
    if labels.ndim != 1 or labels.shape[0] % len(SEVERITIES) or labels.dtype.kind not in "iu":
        raise DatasetLayoutError(
            f"{Path(root) / 'labels.npy'}: expected integer labels of shape (5*N,), "
            f"got {labels.dtype} {labels.shape}"
        )
    n = labels.shape[0] // len(SEVERITIES)
    blocks = np.asarray(labels).reshape(len(SEVERITIES), n)
    if not (blocks == blocks[0]).all():
        raise DatasetLayoutError(
            f"{Path(root) / 'labels.npy'}: the five severity blocks do not repeat one label list"
        )
    return np.asarray(labels, dtype=np.int64)


def load_cifar10c(root: Path, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one corruption at one severity (1-5).

    The images are a read-only memory-mapped view: copy them (``np.array(images)``) before writing.
    """
    root = Path(root)
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of 1, 2, 3, 4, 5; got {severity!r}")
    available = list_corruptions(root)
    if corruption not in available:
        raise DatasetLayoutError(
            f"{root / (corruption + '.npy')} is missing; "
            f"corruptions present: {', '.join(available) or 'none'}"
        )
    labels = load_labels(root)
    images = _load_npy(root / f"{corruption}.npy")
    n = labels.shape[0] // len(SEVERITIES)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DatasetLayoutError(
            f"{root / (corruption + '.npy')}: expected uint8 (5*N, 32, 32, 3), "
            f"got {images.dtype} {images.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DatasetLayoutError(
            f"{root / (corruption + '.npy')}: {images.shape[0]} images "
            f"but labels.npy has {labels.shape[0]} labels"
        )
    block = slice((severity - 1) * n, severity * n)
    return images[block], labels[block]
