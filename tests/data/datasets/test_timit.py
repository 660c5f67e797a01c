"""TIMIT loader on a generated tree in the LDC layout (SPHERE in both byte orders, lower-case copies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devicelab.data.datasets.timit import Timit, TimitError, frame_labels, read_sphere


def write_sphere(path: Path, audio: np.ndarray, byte_format: str = "01", coding: str = "pcm") -> None:
    pcm = (audio * 32767).astype("<i2" if byte_format == "01" else ">i2").tobytes()
    header = (
        f"NIST_1A\n   1024\nsample_count -i {len(audio)}\nsample_rate -i 16000\nsample_n_bytes -i 2\n"
        f"sample_byte_format -s2 {byte_format}\nsample_coding -s{len(coding)} {coding}\nchannel_count -i 1\n"
        "end_head\n"
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.ljust(1024, b" ") + pcm)


def add_utterance(
    folder: Path, utt: str, phn: list[tuple[int, int, str]], byte_format: str = "01", n: int = 8000
) -> np.ndarray:
    audio = (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32)
    write_sphere(folder / f"{utt}.WAV", audio, byte_format)
    (folder / f"{utt}.PHN").write_text("".join(f"{a} {b} {p}\n" for a, b, p in phn))
    (folder / f"{utt}.TXT").write_text(f"0 {n} Some text.\n")
    (folder / f"{utt}.WRD").write_text("2000 6000 some\n")
    return audio


PHN = [
    (0, 2000, "h#"),
    (2000, 2500, "q"),
    (2500, 4000, "ax-h"),
    (4000, 5000, "bcl"),
    (5000, 6000, "b"),
    (6000, 8000, "h#"),
]


@pytest.fixture
def timit_root(tmp_path: Path) -> Path:
    root = tmp_path / "timit" / "TIMIT"  # TRAIN/TEST one level below the given root
    add_utterance(root / "TRAIN" / "DR1" / "FCJF0", "SA1", PHN)
    add_utterance(root / "TRAIN" / "DR1" / "FCJF0", "SI1027", PHN, byte_format="10")
    add_utterance(root / "TRAIN" / "DR2" / "MABC0", "SX12", PHN)
    add_utterance(root / "TEST" / "DR1" / "MDAB0", "SI1039", PHN)  # a core-test speaker
    add_utterance(root / "TEST" / "DR1" / "MDAB0", "SA2", PHN)
    add_utterance(root / "TEST" / "DR2" / "FAKS0", "SX13", PHN)  # a dev speaker
    return tmp_path / "timit"


def test_sets_and_counts(timit_root: Path) -> None:
    corpus = Timit(timit_root)
    assert [u.utt_id for u in corpus.utterances("train")] == ["SI1027", "SX12"]  # SA excluded
    assert len(corpus.utterances("train", include_sa=True)) == 3
    assert [u.speaker for u in corpus.utterances("core_test")] == ["MDAB0"]
    assert [u.speaker for u in corpus.utterances("dev")] == ["FAKS0"]
    assert corpus.speakers("test") == ["FAKS0", "MDAB0"]


def test_sphere_byte_orders_and_folding(timit_root: Path) -> None:
    little, big = sorted(Timit(timit_root).utterances("train", include_sa=True), key=lambda u: u.utt_id)[:2]
    a, sr = little.audio()
    b, _ = big.audio()
    assert sr == 16000 and np.allclose(a, b, atol=1e-4) and abs(a).max() > 0.09
    raw, _ = read_sphere(big.wav)
    assert np.allclose(raw, a, atol=1e-4)
    assert [s.label for s in big.phones()] == [
        "ah",
        "sil",
        "b",
    ]  # q dropped, ax-h -> ah, bcl -> sil, h# dropped
    assert [s.label for s in big.phones(drop_hsharp=False)] == ["sil", "ah", "sil", "b", "sil"]
    assert big.text() == "Some text." and big.words()[0].label == "some"


def test_frame_labels_use_the_frame_centre() -> None:
    from devicelab.data.datasets.timit import PhoneSegment

    labels = frame_labels([PhoneSegment(0, 400, "a"), PhoneSegment(400, 1000, "b")], 1000)
    # frame i covers [160 i, 160 i + 400); centre 160 i + 200
    assert labels == ["a", "a", "b", "b"]  # centres 200, 360, 520, 680


def test_lower_case_copy(tmp_path: Path) -> None:
    add_utterance(tmp_path / "timit" / "train" / "dr1" / "fcjf0", "si1027", PHN)
    add_utterance(tmp_path / "timit" / "test" / "dr1" / "mdab0", "si1039", PHN)
    for p in (tmp_path / "timit").rglob("*.*"):
        p.rename(p.with_name(p.name.lower()))
    corpus = Timit(tmp_path / "timit")
    assert [u.speaker for u in corpus.utterances("core_test")] == ["MDAB0"]
    assert len(corpus.utterances("train")[0].phones()) == 3


def test_errors_name_the_file(timit_root: Path, tmp_path: Path) -> None:
    folder = timit_root / "TIMIT" / "TRAIN" / "DR1" / "FCJF0"
    (folder / "SI1027.PHN").write_text("0 2000 h#\n2000 8000 xyz\n")
    with pytest.raises(TimitError, match=r"SI1027.PHN:2: unknown phone label 'xyz'"):
        Timit(timit_root).utterances("train")[0].phones()
    (folder / "SI1027.PHN").write_text("0 9000 h#\n")
    with pytest.raises(TimitError, match="outside the audio"):
        Timit(timit_root).utterances("train")[0].phones()
    write_sphere(folder / "SI1027.WAV", np.zeros(100, np.float32), coding="pcm,embedded-shorten-v2.00")
    with pytest.raises(TimitError, match="shorten"):
        Timit(timit_root).utterances("train")[0].audio()
    (folder / "SX99.PHN").write_text("0 10 h#\n")
    with pytest.raises(TimitError, match=r"SX99.PHN: no audio"):
        Timit(timit_root).utterances("train")
    with pytest.raises(TimitError, match="TRAIN/ and TEST/"):
        Timit(tmp_path / "timit" / "TIMIT" / "TRAIN")
