"""CIFAR-10-C loader on tiny generated trees in the published layout."""

import pickle

import numpy as np
import pytest

from devicelab.data.datasets.cifar10c import list_corruptions, load_cifar10c
from devicelab.data.datasets.domains import DatasetLayoutError

N = 6


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.tile(rng.integers(0, 10, size=N), 5).astype(np.uint8)
    images = rng.integers(0, 256, size=(5 * N, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.repeat(np.arange(1, 6), N)  # severity marker
    np.save(tmp_path / "fog.npy", images)
    np.save(tmp_path / "contrast.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path, images, labels


def test_loads_one_severity_block(tree):
    root, images, labels = tree
    assert list_corruptions(root) == ["contrast", "fog"]
    x, y = load_cifar10c(root, "fog", 3)
    assert x.shape == (N, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert (x[:, 0, 0, 0] == 3).all()
    np.testing.assert_array_equal(y, labels[:N])
    np.testing.assert_array_equal(x, images[2 * N : 3 * N])


def test_bad_inputs_are_named(tree):
    root, images, labels = tree
    with pytest.raises(DatasetLayoutError, match="snow.npy is missing; corruptions present: contrast, fog"):
        load_cifar10c(root, "snow", 1)
    with pytest.raises(ValueError, match="1, 2, 3, 4, 5"):
        load_cifar10c(root, "fog", 0)
    np.save(root / "fog.npy", images[:, :16])
    with pytest.raises(DatasetLayoutError, match=r"fog.npy: expected uint8 \(5\*N, 32, 32, 3\)"):
        load_cifar10c(root, "fog", 1)
    np.save(root / "fog.npy", images[:-1])
    with pytest.raises(DatasetLayoutError, match="29 images but labels.npy has 30"):
        load_cifar10c(root, "fog", 1)


def test_labels_must_repeat_and_exist(tree):
    root, _, labels = tree
    shuffled = labels.copy()
    shuffled[N], shuffled[N + 1] = (labels[N] + 1) % 10, labels[N + 1]
    np.save(root / "labels.npy", shuffled)
    with pytest.raises(DatasetLayoutError, match="do not repeat"):
        load_cifar10c(root, "fog", 1)
    (root / "labels.npy").unlink()
    with pytest.raises(DatasetLayoutError, match="labels.npy is missing"):
        load_cifar10c(root, "fog", 1)


def test_pickles_are_refused(tree):
    root, _, _ = tree
    (root / "fog.npy").write_bytes(pickle.dumps({"data": [1, 2, 3]}))
    with pytest.raises(DatasetLayoutError, match="never loaded"):
        load_cifar10c(root, "fog", 1)
    np.save(root / "contrast.npy", np.array([object()] * 30, dtype=object), allow_pickle=True)
    with pytest.raises(DatasetLayoutError, match="never loaded"):
        load_cifar10c(root, "contrast", 1)
