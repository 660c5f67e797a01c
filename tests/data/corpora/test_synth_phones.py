"""synth-phones (smoke): TIMIT layout read by the TIMIT loader, labels that agree with the audio, held-out
voices, phone coverage of the sentence list, determinism."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from devicelab.data.corpora import build_corpus
from devicelab.data.corpora.synth_phones import PROFILES, plan_speakers
from devicelab.data.datasets.timit import Timit
from devicelab.data.speech import EspeakEngine
from devicelab.data.speech.phones import fold, timit39, timit61, to_timit
from devicelab.data.speech.texts import command_words, sentences


def _build(root: Path, workers: int = 1) -> Path:
    return build_corpus("synth-phones", "smoke", workers=workers, root=root, log=lambda *_: None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("dl-data"))


def test_timit_loader_reads_the_corpus(smoke: Path) -> None:
    corpus = Timit(smoke)
    train, test = corpus.utterances("train"), corpus.utterances("test")
    assert train and test and not set(corpus.speakers("train")) & set(corpus.speakers("test"))
    for utt in train[:5] + test[:5]:
        audio, sr = utt.audio()
        phones61 = utt.phones61()
        assert sr == 16000 and phones61[0].start == 0 and phones61[-1].end == len(audio)
        assert all(a.end == b.start for a, b in zip(phones61, phones61[1:]))  # contiguous, no gaps
        assert {s.label for s in phones61} <= set(timit61())
        assert phones61[0].label == "h#" and phones61[-1].label == "h#"
        assert {s.label for s in utt.phones()} <= set(timit39())
        assert utt.text() and utt.words()  # espeak-ng reports words
        assert all(0 <= w.start < w.end <= len(audio) for w in utt.words())
    assert "61:" in (smoke / "PHONES.txt").read_text()


def test_labelled_pauses_are_silent_and_phones_are_not(smoke: Path) -> None:
    """Misaligned labels cannot pass: h#/pau frames are quiet, phone frames loud, and shifting the labels
    by 100 ms breaks the agreement."""
    agreements = {0: [], 1600: []}
    for utt in Timit(smoke).utterances("train") + Timit(smoke).utterances("test"):
        audio, _ = utt.audio()
        hop = 80
        n = len(audio) // hop
        frame_db = 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
        loud = frame_db > frame_db.max() - 35
        for shift in agreements:
            labelled = np.zeros(n, dtype=bool)
            for s in utt.phones61():
                if s.label not in ("h#", "pau", "q"):
                    labelled[(s.start + shift) // hop : (s.end + shift) // hop] = True
            agreements[shift].append(np.mean(labelled == loud))
        for s in utt.phones61():  # long pauses are quiet in their middle
            if s.label in ("h#", "pau") and s.end - s.start > 1600:
                middle = frame_db[s.start // hop + 3 : s.end // hop - 3]
                assert np.median(middle) < frame_db.max() - 35, (utt.wav, s)
    assert np.mean(agreements[0]) > 0.85
    assert np.mean(agreements[0]) > np.mean(agreements[1600]) + 0.05


def test_voices_are_held_out() -> None:
    speakers = plan_speakers(PROFILES["quick"], seed=0)
    assert len(speakers) == 16
    test = [s for s in speakers if s.split == "TEST"]
    assert {s.voice.person for s in test if s.voice.person} == {"slt"}
    train_variants = {s.voice.variant for s in speakers if s.split == "TRAIN" and s.voice.variant}
    assert train_variants and not train_variants & {s.voice.variant for s in test}
    assert len({s.spk for s in speakers}) == len(speakers)


def test_every_folded_phone_occurs_20_times_in_the_sentences() -> None:
    engine = EspeakEngine()
    counts: Counter = Counter()
    for text in sentences() + command_words():
        counts.update(s.label for s in fold(to_timit(engine.synth(text, "en-us+m3"), "espeak")))
    assert len(sentences()) >= 250
    rare = {p: counts[p] for p in timit39() if counts[p] < 20}
    assert not rare, rare


def test_deterministic(smoke: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, workers=2)
    assert (
        json.loads((again / "manifest.json").read_text())["content_sha256"]
        == json.loads((smoke / "manifest.json").read_text())["content_sha256"]
    )
    with open(smoke / "SPEAKERS.csv") as f:
        assert {row["split"] for row in csv.DictReader(f)} == {"TRAIN", "TEST"}
