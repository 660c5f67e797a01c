"""tta-lsa data: target priors by name, the CIFAR-10-C layout, and the per-seed domains (spec §4, §6.3)."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from devicelab.core.config import resolve_config
from devicelab.data.corpora.glyph_digits_c import load_corrupted, write_c_layout
from devicelab.methods.tta_lsa.config import TTALSAConfig
from devicelab.methods.tta_lsa.data import Pools, make_domains, prepare_data, shifted_targets, target_prior


def test_target_priors_follow_the_spec():
    np.testing.assert_allclose(
        target_prior("backward", 10, 10.0, np.arange(10), 0)[::-1],
        target_prior("forward", 10, 10.0, np.arange(10), 0),
    )
    assert target_prior("forward-50", 10, 10.0, np.arange(10), 0).max() / target_prior(
        "forward-50", 10, 10.0, np.arange(10), 0
    ).min() == pytest.approx(50)
    assert shifted_targets(["forward", "uniform", "backward", "backward-10"]) == [
        "uniform",
        "backward",
        "backward-10",
    ]


def test_missing_c_layout_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="fog.npy"):
        load_corrupted(tmp_path, "fog", 5)


def test_domains_share_streams_across_variants_and_follow_the_target_prior(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 100)
    write_c_layout(tmp_path, images, labels, ["contrast"], seed=0, log=lambda m: None)
    pools = Pools(images, labels, tmp_path, 10, "test")
    overrides = {
        "stream.corruptions": ["contrast"],
        "stream.size": 200,
        "stream.targets": ["backward", "dirichlet-1.0-0"],
    }
    cfg = resolve_config(TTALSAConfig, "smoke", overrides)
    first, again = make_domains(cfg, pools, seed=1), make_domains(cfg, pools, seed=1)
    assert [d.key for d in first] == ["contrast/5/backward", "contrast/5/dirichlet-1.0-0"]
    assert all(np.array_equal(a.images, b.images) for a, b in zip(first, again))
    backward = first[0]
    assert len(backward.labels) == 200 and np.bincount(backward.labels).argmax() == 9
    ordered = make_domains(
        resolve_config(TTALSAConfig, "smoke", {**overrides, "stream.order": "dirichlet"}), pools, 1
    )
    assert sorted(ordered[0].labels.tolist()) == sorted(backward.labels.tolist())
    assert not np.array_equal(ordered[0].labels, backward.labels)


def test_a_built_glyph_digits_copy_given_with_data_is_read_as_the_corpus(glyph_fixture, tmp_path):
    copy = shutil.copytree(glyph_fixture, tmp_path / "glyph-digits")
    (copy / "manifest.json").write_text(json.dumps({"corpus": "glyph-digits"}))
    ctx = SimpleNamespace(data_path=copy, profile="smoke", log=lambda **record: None)
    cfg = resolve_config(TTALSAConfig, "smoke", {"source.domains": ["serif", "sans"], "stream.per_class": 8})
    pools = prepare_data(cfg, ctx)
    assert pools.track == "glyph-digits-c" and pools.num_classes == 10
    assert len(pools.source_labels) == 2 * 10 * 30  # the train splits of both domains
    assert len(pools.clean_labels) == 2 * 10 * 35 and pools.clean_images.shape[1:] == (
        32,
        32,
        3,
    )  # their test splits
