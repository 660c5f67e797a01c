"""`devicelab data build glyph-digits-c`: the corrupted test split in the CIFAR-10-C layout."""

import numpy as np

from devicelab.data.corpora import build_corpus, ensure_corpus
from devicelab.data.corpora.glyph_digits_c import BUILD_DEFAULTS, ensure_glyph_digits_c
from devicelab.data.datasets.cifar10c import list_corruptions, load_cifar10c


def test_build_reads_back_and_is_reused_by_the_experiment(capsys):
    root = build_corpus("glyph-digits-c", "smoke", log=lambda m: None)
    n = 10 * BUILD_DEFAULTS["smoke"]["per_class"]
    assert "contrast" in list_corruptions(root)
    images, labels = load_cifar10c(root, "contrast", 5)
    assert images.shape == (n, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(np.asarray(labels), minlength=10).tolist() == [n // 10] * 10
    stamp = (root / "manifest.json").stat().st_mtime_ns
    again = ensure_glyph_digits_c(
        ensure_corpus("glyph-digits", "smoke"),
        "smoke",
        ["contrast", "fog"],
        BUILD_DEFAULTS["smoke"]["per_class"],
        BUILD_DEFAULTS["smoke"]["domains"],
        seed=0,
        log=lambda m: None,
    )
    assert again == root and (root / "manifest.json").stat().st_mtime_ns == stamp  # a subset: no rebuild
