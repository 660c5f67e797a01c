"""A tiny TIMIT tree in the LDC layout (SPHERE audio, 61-set ``.PHN``), written by the tests themselves.

Each phone is a different sound (a low tone for ``aa``, noise for ``s``, a lower tone for ``n``), so the
classes are separable; ``h#`` pads every utterance and an ``SA1`` sentence is written that loaders must skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEGMENT = 1600  # samples: 10 frames of 10 ms
SOUNDS = {"aa": 700.0, "n": 250.0, "s": None}


def write_sphere(path: Path, audio: np.ndarray, byte_format: str = "01") -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2" if byte_format == "01" else ">i2").tobytes()
    header = (
        f"NIST_1A\n   1024\nsample_count -i {len(audio)}\nsample_rate -i 16000\nsample_n_bytes -i 2\n"
        f"sample_byte_format -s2 {byte_format}\nsample_coding -s3 pcm\nchannel_count -i 1\nend_head\n"
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.ljust(1024, b" ") + pcm)


def add_utterance(folder: Path, utt: str, phones: list[str], rng: np.random.Generator, byte_format="01"):
    """An utterance of ``phones`` (each SEGMENT samples) between two h# pauses."""
    t = np.arange(SEGMENT) / 16000
    parts, labels, start = [0.001 * rng.standard_normal(SEGMENT)], [(0, SEGMENT, "h#")], SEGMENT
    for phone in phones:
        freq = SOUNDS[phone]
        sound = 0.1 * rng.standard_normal(SEGMENT) if freq is None else 0.2 * np.sin(2 * np.pi * freq * t)
        parts.append(sound + 0.001 * rng.standard_normal(SEGMENT))
        labels.append((start, start + SEGMENT, phone))
        start += SEGMENT
    parts.append(0.001 * rng.standard_normal(SEGMENT))
    labels.append((start, start + SEGMENT, "h#"))
    write_sphere(folder / f"{utt}.WAV", np.concatenate(parts).astype(np.float32), byte_format)
    (folder / f"{utt}.PHN").write_text("".join(f"{a} {b} {p}\n" for a, b, p in labels))
    (folder / f"{utt}.TXT").write_text(f"0 {start + SEGMENT} Some text.\n")


def make_fake_timit(root: Path, seed: int = 0) -> Path:
    """TRAIN: two speakers x (SA1 + 2 sentences); TEST: a core-test speaker (MDAB0) and a dev speaker
    (FAKS0), 2 sentences each. Every sentence holds aa, s, n three times: 12 train tokens per class."""
    rng = np.random.default_rng(seed)
    sentence = ["aa", "s", "n", "s", "aa", "n", "n", "aa", "s"]
    for split, speakers in (("TRAIN", ("DR1/FCJF0", "DR2/MABC0")), ("TEST", ("DR1/MDAB0", "DR2/FAKS0"))):
        for k, speaker in enumerate(speakers):
            folder = root / split / speaker
            if split == "TRAIN":
                add_utterance(folder, "SA1", ["aa"] * 5, rng)
            add_utterance(folder, "SI10", sentence, rng, byte_format="10" if k else "01")
            add_utterance(folder, "SX20", sentence[::-1], rng)
    return root
