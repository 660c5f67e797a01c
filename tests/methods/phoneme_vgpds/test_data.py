"""Phone tokens from a TIMIT-layout tree: sets, counts, seeded draws, and errors that name the problem."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from devicelab.core.config import ConfigError, resolve_config
from devicelab.core.seeding import child_rng
from devicelab.methods.phoneme_vgpds.config import PhonemeVgpdsConfig
from devicelab.methods.phoneme_vgpds.data import (
    PhoneDataError,
    check_classes,
    draw_split,
    load_task,
    spread_over_speakers,
    synthetic_split,
)

from .fake_timit import make_fake_timit


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_fake_timit(tmp_path_factory.mktemp("timit") / "TIMIT")


def smoke_config(**changes) -> PhonemeVgpdsConfig:
    return replace(resolve_config(PhonemeVgpdsConfig, "smoke"), **changes)


def test_tokens_of_every_class_without_sa_sentences(tree):
    task = load_task(tree, smoke_config(train_tokens_per_class=20))
    assert task.classes == ["aa", "s", "n"]
    assert task.train.counts() == [12, 12, 12]  # SA1 (five more aa) is left out
    assert task.test.counts() == [12, 12, 12] and task.speakers == {"train": 2, "test": 2}
    assert all(tok.shape == (10, 39) for toks in task.train.tokens for tok in toks)  # 1600 samples: 10 frames
    assert any("fewer than the 20 asked for" in w for w in task.warnings)
    core = load_task(tree, smoke_config(test_subset="core_test"))
    assert core.test.counts() == [6, 6, 6] and set(core.test.speakers[0]) == {"MDAB0"}
    # an offline corpus has no core-test speakers: its test set is every held-out voice
    assert (
        load_task(tree, smoke_config(test_subset="core_test"), source="synth-phones").test.counts()
        == [12] * 3
    )


def test_max_frames_crops_and_min_frames_drops(tree):
    task = load_task(tree, smoke_config(max_frames=6))
    assert {tok.shape[0] for toks in task.train.tokens for tok in toks} == {6}
    with pytest.raises(PhoneDataError, match="class 'aa' has no train tokens of ≥ 11 frames"):
        load_task(tree, smoke_config(min_frames=11, max_frames=16))


def test_seeded_draws_are_spread_over_speakers_and_repeatable(tree):
    task = load_task(tree, smoke_config())
    a, b, c = draw_split(task, 0, 4, 3), draw_split(task, 0, 4, 3), draw_split(task, 1, 4, 3)
    assert [len(t) for t in a.train] == [4, 4, 4] and np.array_equal(
        a.test_labels, [0, 0, 0, 1, 1, 1, 2, 2, 2]
    )
    assert all(np.array_equal(x, y) for xs, ys in zip(a.train, b.train) for x, y in zip(xs, ys))
    assert not all(np.array_equal(x, y) for xs, ys in zip(a.train, c.train) for x, y in zip(xs, ys))
    speakers = ["A"] * 10 + ["B"] * 2 + ["C"]
    picked = spread_over_speakers(speakers, 6, child_rng(0, "t"))
    assert Counter(speakers[i] for i in picked) == {"A": 3, "B": 2, "C": 1}
    assert len(spread_over_speakers(speakers, 0, child_rng(0, "t"))) == 13  # 0 = all


def test_synthetic_split_differs_per_seed():
    config = resolve_config(PhonemeVgpdsConfig, "smoke").synthetic
    a, b = synthetic_split(config, 0), synthetic_split(config, 1)
    assert [len(t) for t in a.train] == [5, 5, 5] and len(a.test) == 15
    assert not np.array_equal(a.train[0][0], b.train[0][0])


def test_bad_inputs_name_the_key_or_file(tree, tmp_path):
    with pytest.raises(ConfigError, match="classes: unknown phone 'zz'"):
        check_classes(["aa", "zz"])
    assert len(check_classes([])) == 39
    with pytest.raises(PhoneDataError, match="class 'iy' has no train tokens"):
        load_task(tree, smoke_config(classes=["aa", "iy"]))
    with pytest.raises(PhoneDataError, match="TRAIN/ and TEST/"):
        load_task(tmp_path, smoke_config())
    bad = make_fake_timit(tmp_path / "bad")
    (bad / "TRAIN" / "DR1" / "FCJF0" / "SI10.PHN").write_text("0 1600 h#\n1600 3200 xyz\n")
    with pytest.raises(PhoneDataError, match=r"SI10.PHN:2: unknown phone label 'xyz'"):
        load_task(bad, smoke_config())
    task = load_task(bad, smoke_config(), skip_bad=True)  # --skip-bad drops the utterance and names it
    assert task.train.counts() == [9, 9, 9] and "SI10.PHN:2" in task.skipped[0]
