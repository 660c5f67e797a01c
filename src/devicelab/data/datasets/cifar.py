"""CIFAR-10 and CIFAR-100 in their *binary* layouts (the source sets of the CIFAR-C test-time tracks).

``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``: records of 1 label byte + 3,072 bytes
(R, G, B planes of 32×32). ``cifar-100-binary/{train,test}.bin``: 2 label bytes (coarse, fine) + 3,072 bytes.
The python-pickle versions are refused: devicelab never unpickles downloaded files (tta-lsa spec §6.4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devicelab.data.datasets.domains import DatasetLayoutError

IMAGE_BYTES = 3 * 32 * 32
CIFAR10_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def _refuse_pickles(root: Path) -> None:
    pickled = [root / "data_batch_1", root / "train"]  # cifar-10-batches-py, cifar-100-python
    if any(p.is_file() for p in pickled):
        raise DatasetLayoutError(
            f"{root}: this is the python-pickle version of CIFAR, which devicelab does not unpickle; "
            "download the binary version (cifar-10-binary.tar.gz / cifar-100-binary.tar.gz)"
        )


def _read_records(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + IMAGE_BYTES
    if raw.size == 0 or raw.size % record:
        raise DatasetLayoutError(
            f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records"
        )
    raw = raw.reshape(-1, record)
    images = raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
    return np.ascontiguousarray(images), raw[:, label_bytes - 1].astype(np.int64)


def load_cifar10(root: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images (N, 32, 32, 3) uint8 and labels (N,) int64 from ``cifar-10-batches-bin``."""
    root = Path(root)
    if split not in CIFAR10_FILES:
        raise ValueError(f"split={split!r}: expected one of {', '.join(CIFAR10_FILES)}")
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: no such folder (expected cifar-10-batches-bin)")
    _refuse_pickles(root)
    missing = [f for f in CIFAR10_FILES[split] if not (root / f).is_file()]
    if missing:
        raise DatasetLayoutError(f"{root}: missing {', '.join(missing)} (the CIFAR-10 binary version)")
    parts = [_read_records(root / f, 1) for f in CIFAR10_FILES[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar100(root: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 images (N, 32, 32, 3) uint8 and fine labels (N,) int64 from ``cifar-100-binary``."""
    root = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: expected one of train, test")
    _refuse_pickles(root)
    path = root / f"{split}.bin"
    if not path.is_file():
        raise DatasetLayoutError(f"{root}: missing {split}.bin (the CIFAR-100 binary version)")
    return _read_records(path, 2)
