"""TIMIT (LDC93S1) in its published layout, and ``synth-phones`` (the same layout with RIFF WAVs).

``ROOT/{TRAIN,TEST}/DR<n>/<SPK>/<UTT>.{WAV,PHN,WRD,TXT}``, case-insensitive; ``TRAIN``/``TEST`` at ROOT or
one level below. Audio is NIST SPHERE (read by soundfile or by :func:`read_sphere`) or RIFF. ``.PHN`` holds
61-set labels; :meth:`TimitUtterance.phones` folds them to 39 (Lee & Hon 1989, as Kaldi's
``egs/timit/s5/conf/phones.60-48-39.map``). Sets follow Halberstadt (1998): train = TRAIN without SA1/SA2,
core test = 24 TEST speakers (SI and SX), dev = 50 other TEST speakers (Kaldi ``dev_spk.list``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import soundfile as sf

from devicelab.data.speech.phones import fold_map

CORE_TEST_SPEAKERS = frozenset(
    "MDAB0 MWBT0 FELC0 MTAS1 MWEW0 FPAS0 MJMP0 MLNT0 FPKT0 MLLL0 MTLS0 FJLM0 MBPM0 MKLT0 FNLP0 MCMJ0 MJDH0 "
    "FMGD0 MGRT0 MNJM0 FDHC0 MJLN0 MPAM0 FMLD0".split()
)
# the 50 development speakers of the Kaldi TIMIT recipe (egs/timit/s5/conf/dev_spk.list)
DEV_SPEAKERS = frozenset(
    "FAKS0 FDAC1 FJEM0 MGWT0 MJAR0 MMDB1 MMDM2 MPDF0 FCMH0 FKMS0 MBDG0 MBWM0 MCSH0 FADG0 FDMS0 FEDW0 MGJF0 "
    "MGLB0 MRTK0 MTAA0 MTDT0 MTHC0 MWJG0 FNMR0 FREW0 FSEM0 MBNS0 MMJR0 MDLS0 MDLF0 MDVC0 MERS0 FMAH0 FDRW0 "
    "MRCS0 MRJM4 FCAL1 MMWH0 FJSJ0 MAJC0 MJSW0 MREB0 FGJD0 FJMG0 MROA0 MTEB0 MJFC0 MRJR0 FMML0 MRWS1".split()
)


class TimitError(ValueError):
    """A missing or malformed part of a TIMIT tree; the message names the file (and line)."""


def read_sphere(path: Path) -> tuple[np.ndarray, int]:
    """Read an uncompressed NIST SPHERE file (16-bit PCM, either byte order) as float32."""
    raw = path.read_bytes()
    if not raw.startswith(b"NIST_1A"):
        raise TimitError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
    header_size = int(raw[8:16].strip() or 1024)
    header = raw[:header_size].decode("ascii", "replace")
    fields = dict(re.findall(r"^(\S+) -\S+ (.+)$", header, flags=re.M))
    coding = fields.get("sample_coding", "pcm").strip()
    if "shorten" in coding or "embedded" in coding:
        raise TimitError(f"{path}: shorten-compressed SPHERE ({coding}); decompress it first (sph2pipe)")
    if fields.get("sample_n_bytes", "2").strip() != "2" or not coding.startswith("pcm"):
        raise TimitError(
            f"{path}: unsupported SPHERE coding {coding!r} / {fields.get('sample_n_bytes')} bytes"
        )
    order = fields.get("sample_byte_format", "01").strip()
    dtype = "<i2" if order == "01" else ">i2"
    audio = np.frombuffer(raw[header_size:], dtype=dtype).astype(np.float32) / 32768.0
    return audio, int(fields.get("sample_rate", "16000").strip())


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """RIFF or SPHERE audio as float32 mono."""
    head = path.read_bytes()[:8]
    if head.startswith(b"NIST_1A"):
        header = path.read_bytes()[:1024].decode("ascii", "replace")
        if "shorten" in header:
            raise TimitError(f"{path}: shorten-compressed SPHERE; decompress it first (sph2pipe)")
        try:
            audio, sr = sf.read(str(path), dtype="float32")
            return audio, sr
        except (sf.LibsndfileError, RuntimeError):
            return read_sphere(path)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise TimitError(f"{path}: cannot read audio ({e})") from None
    return audio.mean(axis=1), sr


@dataclass(frozen=True)
class PhoneSegment:
    start: int  # sample
    end: int
    label: str


def _find(folder: Path, name: str) -> Path | None:
    """A child of ``folder`` named ``name`` in any case."""
    exact = folder / name
    if exact.exists():
        return exact
    for child in folder.iterdir() if folder.is_dir() else []:
        if child.name.lower() == name.lower():
            return child
    return None


@dataclass
class TimitUtterance:
    wav: Path
    split: str  # TRAIN | TEST (folder)
    dialect: str
    speaker: str
    utt_id: str

    def _sibling(self, ext: str) -> Path | None:
        return _find(self.wav.parent, self.wav.stem + ext) or _find(
            self.wav.parent, self.wav.stem + ext.lower()
        )

    def audio(self) -> tuple[np.ndarray, int]:
        return read_audio(self.wav)

    @cached_property
    def n_samples(self) -> int:
        audio, _ = self.audio()
        return len(audio)

    def phones61(self) -> list[PhoneSegment]:
        """The ``.PHN`` segments (61-set); bounds outside the audio or unknown labels are errors."""
        path = self._sibling(".PHN")
        if path is None:
            raise TimitError(f"{self.wav}: no .PHN beside it")
        known = fold_map()
        segments = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3:
                raise TimitError(f"{path}:{number}: expected 'start end label', got {line!r}")
            start, end, label = int(parts[0]), int(parts[1]), parts[2]
            if label not in known:
                raise TimitError(f"{path}:{number}: unknown phone label {label!r}")
            if not 0 <= start < end <= self.n_samples:
                raise TimitError(
                    f"{path}:{number}: segment {start}-{end} outside the audio (0-{self.n_samples})"
                )
            segments.append(PhoneSegment(start, end, label))
        return segments

    def phones(self, drop_hsharp: bool = True) -> list[PhoneSegment]:
        """Segments folded to the 39-set: ``q`` dropped, edge ``h#`` dropped when ``drop_hsharp``."""
        folding = fold_map()
        out = []
        for s in self.phones61():
            if drop_hsharp and s.label == "h#":
                continue
            if folding[s.label] is not None:
                out.append(PhoneSegment(s.start, s.end, folding[s.label]))
        return out

    def words(self) -> list[PhoneSegment]:
        path = self._sibling(".WRD")
        if path is None:
            return []
        return [
            PhoneSegment(int(a), int(b), w)
            for a, b, w in (line.split() for line in path.read_text().splitlines() if line.strip())
        ]

    def text(self) -> str:
        path = self._sibling(".TXT")
        if path is None:
            return ""
        parts = path.read_text().split(maxsplit=2)
        return parts[2].strip() if len(parts) == 3 else ""


def frame_labels(
    segments: list[PhoneSegment],
    n_samples: int,
    sample_rate_hz: int = 16000,
    window_ms: float = 25.0,
    hop_ms: float = 10.0,
) -> list[str | None]:
    """The label at each analysis frame's centre (``None`` where no segment covers it)."""
    window, hop = int(sample_rate_hz * window_ms / 1000), int(sample_rate_hz * hop_ms / 1000)
    n_frames = max(0, 1 + (n_samples - window) // hop)
    labels: list[str | None] = [None] * n_frames
    for s in segments:
        first = max(0, int(np.ceil((s.start - window / 2) / hop)))
        for i in range(first, n_frames):
            centre = i * hop + window / 2
            if centre >= s.end:
                break
            if centre >= s.start:
                labels[i] = s.label
    return labels


class Timit:
    """A TIMIT root (or ``synth-phones`` folder): utterances per set, checked on construction."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise TimitError(f"{self.root}: TIMIT root not found")
        self.split_dirs = self._locate()

    def _locate(self) -> dict[str, Path]:
        for base in [self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())]:
            train, test = _find(base, "TRAIN"), _find(base, "TEST")
            if train is not None and test is not None:
                return {"TRAIN": train, "TEST": test}
        raise TimitError(f"{self.root}: expected TRAIN/ and TEST/ folders (at the root or one level below)")

    @cached_property
    def all_utterances(self) -> list[TimitUtterance]:
        utterances = []
        for split, folder in self.split_dirs.items():
            for dialect in sorted(
                p for p in folder.iterdir() if p.is_dir() and p.name.upper().startswith("DR")
            ):
                for speaker in sorted(p for p in dialect.iterdir() if p.is_dir()):
                    for wav in sorted(speaker.iterdir()):
                        if wav.suffix.upper() != ".WAV" or wav.name.startswith("."):
                            continue
                        utt = TimitUtterance(
                            wav, split, dialect.name.upper(), speaker.name.upper(), wav.stem.upper()
                        )
                        if utt._sibling(".PHN") is None:
                            raise TimitError(f"{wav}: no .PHN beside it")
                        utterances.append(utt)
                    for phn in speaker.iterdir():
                        if (
                            phn.suffix.upper() == ".PHN"
                            and _find(speaker, phn.stem + ".WAV") is None
                            and _find(speaker, phn.stem + ".wav") is None
                        ):
                            raise TimitError(f"{phn}: no audio (.WAV) beside it")
        if not utterances:
            raise TimitError(f"{self.root}: no utterances under TRAIN/ and TEST/ (DR*/<speaker>/<utt>.WAV)")
        return utterances

    def utterances(self, subset: str = "train", include_sa: bool = False) -> list[TimitUtterance]:
        """Utterances of ``train`` (TRAIN), ``test`` (all TEST), ``core_test`` or ``dev``.

        SA1/SA2 are left out unless ``include_sa``."""
        if subset not in ("train", "test", "core_test", "dev"):
            raise ValueError(f"unknown TIMIT subset {subset!r}; valid: train, test, core_test, dev")
        split = "TRAIN" if subset == "train" else "TEST"
        out = [
            u
            for u in self.all_utterances
            if u.split == split and (include_sa or not u.utt_id.startswith("SA"))
        ]
        if subset == "core_test":
            out = [u for u in out if u.speaker in CORE_TEST_SPEAKERS]
        elif subset == "dev":
            out = [u for u in out if u.speaker in DEV_SPEAKERS]
        return out

    def speakers(self, subset: str = "train") -> list[str]:
        return sorted({u.speaker for u in self.utterances(subset)})
