"""LibriSpeech loader on a generated tree in the OpenSLR layout (FLAC audio, transcripts, alignments)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.datasets.librispeech import LibriSpeech, LibriSpeechError, parse_alignment_line


def make_tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for subset, speakers in {"train-clean-100": ["19", "26"], "test-clean": ["1089"]}.items():
        for spk in speakers:
            chapter = root / subset / spk / "198"
            chapter.mkdir(parents=True)
            lines = []
            for utt in range(2):
                utt_id = f"{spk}-198-{utt:04d}"
                sf.write(
                    str(chapter / f"{utt_id}.flac"), 0.1 * rng.standard_normal(8000), 16000, format="FLAC"
                )
                lines.append(f"{utt_id} HELLO WORLD NUMBER {utt}")
            (chapter / f"{spk}-198.trans.txt").write_text("\n".join(lines) + "\n")
    (root / "train-clean-100" / "19" / "198" / "19-198.alignment.txt").write_text(
        '19-198-0000 ",HELLO,WORLD,,NUMBER,ZERO," "0.2,0.5,0.9,1.0,1.3,1.6,1.8"\n'
    )
    (root / "SPEAKERS.TXT").write_text(
        ";ID |SEX| SUBSET |MINUTES| NAME\n19 | F | train-clean-100 | 25.19 | Kara\n"
    )
    return root


def test_reads_subsets_transcripts_and_audio(tmp_path: Path) -> None:
    corpus = LibriSpeech(make_tree(tmp_path / "LibriSpeech"))
    assert corpus.subsets == ["test-clean", "train-clean-100"]
    train = corpus.utterances("train-clean-100")
    assert [u.utt_id for u in train] == ["19-198-0000", "19-198-0001", "26-198-0000", "26-198-0001"]
    assert train[1].text == "HELLO WORLD NUMBER 1" and train[1].speaker == "19" and train[1].chapter == "198"
    assert train[0].audio().shape == (8000,)
    assert corpus.speakers("test-clean") == ["1089"] and corpus.speaker_info["19"]["sex"] == "F"


def test_alignments_with_silences_and_missing_lines(tmp_path: Path) -> None:
    train = LibriSpeech(make_tree(tmp_path / "LibriSpeech")).utterances("train-clean-100")
    words = train[0].alignment
    assert [w.word for w in words] == ["", "HELLO", "WORLD", "", "NUMBER", "ZERO", ""]
    assert words[1].start_s == 0.2 and words[1].end_s == 0.5
    assert train[1].alignment is None  # unaligned utterance: no line


def test_alignment_parse_errors() -> None:
    with pytest.raises(LibriSpeechError, match="2 words but 3 end times"):
        parse_alignment_line('1-2-0003 ",A" "0.1,0.2,0.3"', "x.alignment.txt:1")
    with pytest.raises(LibriSpeechError, match="not numbers"):
        parse_alignment_line('1-2-0003 ",A" "0.1,zz"', "x.alignment.txt:1")


def test_missing_parts_are_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "LibriSpeech")
    corpus = LibriSpeech(root)
    with pytest.raises(LibriSpeechError, match="dev-clean: subset folder missing"):
        corpus.utterances("dev-clean")
    (root / "test-clean" / "1089" / "198" / "1089-198-0001.flac").unlink()
    with pytest.raises(LibriSpeechError, match=r"1089-198.trans.txt:2: audio .*1089-198-0001.flac"):
        corpus.utterances("test-clean")
    with pytest.raises(LibriSpeechError, match="no subset folders"):
        LibriSpeech(tmp_path)
