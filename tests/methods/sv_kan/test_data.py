"""Loaders of sv-kan: the synth-speakers corpus (confound check, splits) and a LibriSpeech tree with word
alignments, FLAC audio and missing pieces, built here in miniature."""

import json

import numpy as np
import pytest
import soundfile as sf

from devicelab.methods.sv_kan.data import SvKanDataError, keyword_vocabulary, load_corpus, load_librispeech

FIELDS = ["utt_id", "path", "split", "speaker", "base_voice", "person", "keyword_id", "preferred"]


def _write_corpus(root, preferred: str, confound: float):
    rows = []
    for split, speakers in (("train", ("id1", "id2")), ("test", ("id3", "id4"))):
        for spk in speakers:
            for n in range(4):
                path = f"wav/{spk}/01/{n:05d}.wav"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                sf.write(root / path, 0.1 * np.random.default_rng(n).normal(size=8000), 16000)
                pref = preferred if split == "train" else "-"
                rows.append([f"{spk}-{n}", path, split, spk, f"v-{spk}", "-", f"kw0{n % 2}", pref])
    (root / "utterances.tsv").write_text(
        "\t".join(FIELDS) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
    )
    (root / "manifest.json").write_text(json.dumps({"corpus": "synth-speakers", "confound": confound}))


def test_a_build_without_preferred_subsets_is_refused_unless_balanced_is_allowed(tmp_path):
    _write_corpus(tmp_path, "-", 0.0)
    with pytest.raises(SvKanDataError, match="manifest.json.*allow_balanced=true"):
        load_corpus(tmp_path)
    task = load_corpus(tmp_path, allow_balanced=True)
    assert len(task.train) == 8 and len(task.test) == 8 and task.keywords == ["kw00", "kw01"]


def test_confound_is_read_and_measured(tmp_path):
    _write_corpus(tmp_path, "kw00", 0.75)
    task = load_corpus(tmp_path)
    assert task.confound == 0.75 and task.preferred_fraction == 0.5
    assert task.train.features[0].shape[0] == 40
    assert abs(float(task.train.features[0].mean(-1).abs().max())) < 1e-4  # per-band mean removed


def test_missing_table_column_and_audio_are_named(tmp_path):
    with pytest.raises(SvKanDataError, match="utterances.tsv: missing"):
        load_corpus(tmp_path)
    _write_corpus(tmp_path, "kw00", 0.75)
    text = (tmp_path / "utterances.tsv").read_text()
    (tmp_path / "utterances.tsv").write_text(text.replace("base_voice", "basevoice", 1))
    with pytest.raises(SvKanDataError, match="column 'base_voice' missing"):
        load_corpus(tmp_path)
    _write_corpus(tmp_path, "kw00", 0.75)
    (tmp_path / "wav/id3/01/00002.wav").write_bytes(b"RIFF")
    with pytest.raises(ValueError, match="00002.wav"):
        load_corpus(tmp_path)
    task = load_corpus(tmp_path, skip_bad=True)
    assert len(task.test) == 7 and "00002.wav" in task.skipped[0]


def test_smoke_corpus_splits_are_disjoint_by_base_voice():
    from devicelab.data.corpora import ensure_corpus

    task = load_corpus(ensure_corpus("synth-speakers", "smoke"))
    assert not set(task.train.group) & set(task.test.group)
    assert not set(task.train.speaker) & set(task.test.speaker)
    assert {"test_tk", "test_ntk"} <= set(task.corpus_trials)


def make_librispeech(root, with_alignments: bool = True):
    """4 training and 3 test speakers, one chapter each, 3 utterances of 3 words (FLAC)."""
    words = ["HELLO", "WORLD", "TODAY", "AGAIN"]
    for subset, speakers in (("train-clean-100", (11, 12, 13, 14)), ("test-clean", (21, 22, 23))):
        for spk in speakers:
            folder = root / subset / str(spk) / "100"
            folder.mkdir(parents=True)
            trans, align = [], []
            for n in range(3):
                utt = f"{spk}-100-{n:04d}"
                sf.write(
                    folder / f"{utt}.flac", 0.1 * np.random.default_rng(spk + n).normal(size=24000), 16000
                )
                said = [words[(n + i) % 4] for i in range(3)]
                trans.append(f"{utt} {' '.join(said)} OF")
                if n < 2:  # the third utterance has no alignment line
                    align.append(f'{utt} ",{",".join(said)},OF," "0.1,0.5,0.9,1.2,1.3,1.5"')
            (folder / f"{spk}-100.trans.txt").write_text("\n".join(trans) + "\n")
            if with_alignments:
                (folder / f"{spk}-100.alignment.txt").write_text("\n".join(align) + "\n")
    return root


def test_librispeech_keyword_items_from_alignments(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech")
    task = load_librispeech(root, train_subsets=["train-clean-100"], test_subset="test-clean")
    assert task.keywords == [
        "TODAY",
        "AGAIN",
        "HELLO",
        "WORLD",
    ]  # by count, ties alphabetical; "OF" too short
    assert len(task.train) == 4 * 2 * 3 and len(task.test) == 3 * 2 * 3  # aligned utterances x 3 words
    assert task.train.features[0].shape == (40, 201)  # a 2 s crop
    assert (task.train.keyword >= 0).all()


def test_librispeech_without_alignments(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech", with_alignments=False)
    with pytest.raises(SvKanDataError, match="alignment.txt.*keyword_source=none"):
        load_librispeech(root, train_subsets=["train-clean-100"], test_subset="test-clean")
    task = load_librispeech(
        root, train_subsets=["train-clean-100"], test_subset="test-clean", keyword_source="none"
    )
    assert len(task.train) == 12 and task.keywords == [] and (task.train.keyword == -1).all()


def test_librispeech_missing_audio_and_bad_alignment_are_named(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech")
    (root / "test-clean/21/100/21-100-0001.flac").unlink()
    with pytest.raises(SvKanDataError, match=r"21-100.trans.txt:2: audio .*21-100-0001.flac"):
        load_librispeech(root, train_subsets=["train-clean-100"], test_subset="test-clean")
    (root / "train-clean-100/11/100/11-100.alignment.txt").write_text('11-100-0000 ",A,B," "0.5,0.2"\n')
    with pytest.raises(ValueError, match="11-100.alignment.txt:1"):
        load_librispeech(root, train_subsets=["train-clean-100"], test_subset="test-clean")
    with pytest.raises(SvKanDataError, match="subset folder missing"):
        load_librispeech(root, train_subsets=["train-clean-360"], test_subset="test-clean")


def test_keyword_vocabulary_counts_long_words():
    assert keyword_vocabulary(["the HOUSE house garden", "garden house"], size=2) == ["HOUSE", "GARDEN"]
