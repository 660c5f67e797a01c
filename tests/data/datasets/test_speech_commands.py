"""The Speech Commands loader on generated mini trees: layout checks, splits from the lists, speakers."""

import numpy as np
import pytest
import soundfile as sf

from devicelab.audio.io import AudioError
from devicelab.data.datasets.speech_commands import (
    KEYWORDS,
    LABELS_12,
    PUBLISHED_CLASS_CAPS,
    SpeechCommandsDataset,
    SpeechCommandsError,
    all_words_split,
    class_caps,
    index_speech_commands,
    load_background_noise,
    make_toy_speech_commands,
    official_test_set,
    read_clip,
    speaker_of,
    twelve_class_split,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_toy_speech_commands(tmp_path_factory.mktemp("gsc"), version=2, takes=2)


def test_index_assigns_splits_from_the_lists_only(tree):
    index = index_speech_commands(tree)
    assert index.version == 2 and len(index.words) == 35
    listed_val = set((tree / "validation_list.txt").read_text().split())
    listed_test = set((tree / "testing_list.txt").read_text().split())
    split = dict(index.files)
    assert {r for r, s in split.items() if s == "validation"} == listed_val
    assert {r for r, s in split.items() if s == "test"} == listed_test
    assert all(s == "train" for r, s in split.items() if r not in listed_val | listed_test)
    # the toy tree keeps speakers apart by split, and the loader reports them
    assert not index.speakers("train") & index.speakers("test")
    assert len(index.speakers("train")) == 6 and len(index.speakers("test")) == 2


def test_speaker_is_the_prefix_before_nohash():
    assert speaker_of("bb05582b_nohash_3.wav") == "bb05582b"
    with pytest.raises(SpeechCommandsError, match="right.wav"):
        speaker_of("right.wav")


def test_twelve_class_task_labels_caps_and_seeded_unknowns(tree):
    index = index_speech_commands(tree)
    caps = class_caps(index, "keyword_mean")
    assert caps == {"train": 12, "validation": 4, "test": 4}  # 6/2/2 speakers x 2 takes per keyword
    train = twelve_class_split(index, "train", seed=0, caps="keyword_mean")
    labels = [c.label for c in train]
    assert labels.count(0) == labels.count(1) == 12
    assert all(labels.count(k) == 12 for k in range(2, 12))
    assert all(c.path is None for c in train if c.label == 0)
    for c in train:
        if c.label >= 2:
            assert LABELS_12[c.label] == c.word
        elif c.label == 1:
            assert c.word not in KEYWORDS

    def unknown(seed):
        return [c.path for c in twelve_class_split(index, "train", seed, "keyword_mean") if c.label == 1]

    assert unknown(0) == unknown(0) and unknown(0) != unknown(1)
    explicit = twelve_class_split(index, "test", 0, {"train": 1, "validation": 1, "test": 3})
    assert [c.label for c in explicit].count(0) == 3
    assert class_caps(index, "published") == PUBLISHED_CLASS_CAPS[2]


def test_all_words_task_has_35_classes(tree):
    index = index_speech_commands(tree)
    clips = all_words_split(index, "train")
    assert sorted({c.label for c in clips}) == list(range(35))


def test_dataset_yields_padded_one_second_clips(tree):
    index = index_speech_commands(tree)
    ds = SpeechCommandsDataset(twelve_class_split(index, "validation", 0, "keyword_mean"))
    wave, label = ds[0]
    assert wave.shape == (1, 16000) and wave.dtype.__str__() == "torch.float32"
    waves, labels = ds.load_all()
    assert waves.shape == (len(ds), 16000) and labels.tolist() == [c.label for c in ds.clips]
    assert (waves[labels == 0] == 0).all()  # generated silence is all zeros
    assert len(load_background_noise(index)) == 2


def _copy_tree(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_missing_listed_file_is_named(tree, tmp_path):
    bad = _copy_tree(tree, tmp_path / "bad")
    first = (bad / "testing_list.txt").read_text().split()[0]
    (bad / first).unlink()
    with pytest.raises(SpeechCommandsError, match=first.replace("/", ".")):
        index_speech_commands(bad)


def test_missing_lists_noise_and_words_are_named(tree, tmp_path):
    with pytest.raises(SpeechCommandsError, match="not found"):
        index_speech_commands(tmp_path / "nowhere")
    bad = _copy_tree(tree, tmp_path / "nolist")
    (bad / "validation_list.txt").unlink()
    with pytest.raises(SpeechCommandsError, match="validation_list.txt"):
        index_speech_commands(bad)
    bad = _copy_tree(tree, tmp_path / "nonoise")
    for f in (bad / "_background_noise_").iterdir():
        f.unlink()
    with pytest.raises(SpeechCommandsError, match="_background_noise_"):
        index_speech_commands(bad)
    bad = _copy_tree(tree, tmp_path / "noword")
    import shutil

    shutil.rmtree(bad / "marvin")
    with pytest.raises(SpeechCommandsError, match="marvin"):
        index_speech_commands(bad)


def test_version_one_tree_is_detected_with_its_published_caps(tmp_path):
    tree = make_toy_speech_commands(
        tmp_path / "v1", version=1, speakers={"train": 1, "validation": 1, "test": 1}
    )
    index = index_speech_commands(tree)
    assert index.version == 1 and len(index.words) == 30
    assert class_caps(index, "published") == {"train": 1854, "validation": 258, "test": 257}


def test_clips_longer_than_one_second_or_at_other_rates_are_errors(tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16001, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="long.wav.*longer than 1 s"):
        read_clip(long)
    rate = tmp_path / "rate.wav"
    sf.write(rate, np.zeros(8000, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="rate.wav.*8000"):
        read_clip(rate)
    short = tmp_path / "short.wav"
    sf.write(short, 0.5 * np.ones(100, dtype=np.float32), 16000)
    clip = read_clip(short)
    assert clip.shape == (16000,) and clip[:100].min() > 0.49 and not clip[100:].any()


def test_official_test_set_needs_all_twelve_folders(tmp_path):
    (tmp_path / "yes").mkdir()
    with pytest.raises(SpeechCommandsError, match="_silence_"):
        official_test_set(tmp_path, 1)
    for name in LABELS_12:
        (tmp_path / name).mkdir(exist_ok=True)
        sf.write(tmp_path / name / "abcd1234_nohash_0.wav", np.zeros(16000, dtype=np.float32), 16000)
    clips = official_test_set(tmp_path, 1)
    assert sorted(c.label for c in clips) == list(range(12))
