"""The CIFAR binary loaders on a fake tree in the published layout."""

import numpy as np
import pytest

from devicelab.data.datasets.cifar import load_cifar10, load_cifar100
from devicelab.data.datasets.domains import DatasetLayoutError


def _write_batch(path, labels, label_bytes=1, seed=0):
    rng = np.random.default_rng(seed)
    planes = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    heads = np.zeros((len(labels), label_bytes), dtype=np.uint8)
    heads[:, -1] = labels
    np.concatenate([heads, planes.reshape(len(labels), -1)], axis=1).tofile(path)
    return planes.transpose(0, 2, 3, 1)


def test_cifar10_binary_layout(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    first = None
    for i in range(1, 6):
        images = _write_batch(root / f"data_batch_{i}.bin", [i, 9 - i, 0], seed=i)
        first = images if i == 1 else first
    _write_batch(root / "test_batch.bin", [3, 4])
    x, y = load_cifar10(root, "train")
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8
    assert y.tolist()[:3] == [1, 8, 0]
    assert np.array_equal(x[:3], first)  # R, G, B planes become the channel axis
    assert load_cifar10(root, "test")[1].tolist() == [3, 4]


def test_cifar100_uses_the_fine_label(tmp_path):
    root = tmp_path / "cifar-100-binary"
    root.mkdir()
    _write_batch(root / "train.bin", [57, 99], label_bytes=2)
    assert load_cifar100(root, "train")[1].tolist() == [57, 99]


def test_missing_truncated_and_pickled_files_are_named(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    with pytest.raises(DatasetLayoutError, match="missing data_batch_1.bin"):
        load_cifar10(root)
    (root / "test_batch.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DatasetLayoutError, match="test_batch.bin: 100 bytes"):
        load_cifar10(root, "test")
    pickled = tmp_path / "cifar-10-batches-py"
    pickled.mkdir()
    (pickled / "data_batch_1").write_bytes(b"x")
    with pytest.raises(DatasetLayoutError, match="does not unpickle"):
        load_cifar10(pickled)
