"""What the two sound corpora share (corpora.md, "game-scenes" and "game-events"): recorded sounds from
Debian game and education packages, decoded to 16 kHz and de-duplicated by PCM hash; Qt resource bundles
(gcompris); procedural stand-ins for the no-download ``smoke`` profiles; and the city signatures (room,
EQ, hum, noise floor, device chain) that make the recording environments.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import butter, fftconvolve

from devicelab.audio.channel import (
    apply_sos,
    db_to_gain,
    eq_sos,
    high_shelf,
    hum_noise,
    peaking,
    pink_noise,
    rms,
    set_rms_dbfs,
    trim_silence,
    white_noise,
)
from devicelab.audio.io import resample
from devicelab.core.seeding import child_rng
from devicelab.data.corpora._speech import deb_record, generated_record, pcm16, sox_gsm_roundtrip
from devicelab.data.debs import DebFetcher, MissingToolError, UnpackedPackage

SAMPLE_RATE_HZ = 16000
AUDIO_SUFFIXES = (".wav", ".ogg", ".oga", ".flac")


# --- sources --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceGlob:
    """Files of one Debian package: a glob under its root, or ``bundle.rcc!inner-glob`` for the files
    inside Qt resource bundles (gcompris-qt-data keeps its sounds in uncompressed ``.rcc`` files)."""

    package: str
    pattern: str

    @property
    def in_bundle(self) -> bool:
        return "!" in self.pattern


@dataclass
class Recording:
    """One distinct source recording at 16 kHz mono (``member`` is ``bundle.rcc!inner`` inside a bundle)."""

    label: str
    package: str
    version: str
    member: str
    audio: np.ndarray  # (T,) float32, 16 kHz
    pcm_sha1: str
    person: str = ""  # who speaks (Speech sources), else ""

    @property
    def source_id(self) -> str:
        return f"{self.package}:{self.member}"

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE_HZ


def read_qt_resources(path: Path) -> list[tuple[str, bytes]]:
    """``(name, data)`` of every file in a Qt resource bundle (``rcc`` binary format, versions 1-3).

    Layout: magic ``qres``, then big-endian version, tree, data and names offsets. A tree node is
    (name offset u32, flags u16, then child count u32 + first child u32 for a directory, or country u16 +
    language u16 + data offset u32 for a file), plus a u64 modification time from version 2. Names are
    (length u16, hash u32, UTF-16BE); data are (size u32, bytes). Compressed entries are skipped.
    """
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource bundle (no 'qres' magic)")
    version, tree, data, names = struct.unpack(">4I", blob[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    files: list[tuple[str, bytes]] = []

    def walk(index: int, prefix: str) -> None:
        pos = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[pos : pos + 6])
        name = name_at(name_offset) if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", blob[pos + 6 : pos + 14])
            for child in range(count):
                walk(first + child, f"{prefix}{name}/" if index else "")
        elif not flags & 5:  # plain (zlib = 1, zstd = 4 are skipped)
            (offset,) = struct.unpack(">I", blob[pos + 10 : pos + 14])
            (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
            files.append((prefix + name, blob[data + offset + 4 : data + offset + 4 + size]))

    walk(0, "")
    return files


def decode_audio(data: bytes | Path, where: str) -> np.ndarray:
    """Decode wav/ogg/oga/flac (soundfile) to 16 kHz mono float32; errors name ``where``."""
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
        audio, sr = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise ValueError(f"{where}: cannot decode audio ({e})") from None
    return resample(audio.mean(axis=1), sr, SAMPLE_RATE_HZ).astype(np.float32)


def pcm_sha1(audio: np.ndarray) -> str:
    """Hash of the decoded 16 kHz 16-bit PCM: re-encoded copies of one recording share it."""
    return hashlib.sha1((pcm16(audio) * 32768).astype("<i2").tobytes()).hexdigest()


def _package_files(pkg: UnpackedPackage, pattern: str) -> list[tuple[str, bytes | Path]]:
    """(member, data or path) of the files a :class:`SourceGlob` pattern names, sorted by member."""
    if "!" in pattern:
        bundle_glob, inner_glob = pattern.split("!", 1)
        out = []
        for bundle in sorted(pkg.root.glob(bundle_glob)):
            rel = bundle.relative_to(pkg.root).as_posix()
            for name, data in read_qt_resources(bundle):
                if fnmatch.fnmatch(name, inner_glob) and name.endswith(AUDIO_SUFFIXES):
                    out.append((f"{rel}!{name}", data))
        return sorted(out, key=lambda item: item[0])
    files = [p for p in pkg.root.glob(pattern) if p.is_file() and p.suffix in AUDIO_SUFFIXES]
    return sorted(((p.relative_to(pkg.root).as_posix(), p) for p in files), key=lambda item: item[0])


@dataclass
class SourceSet:
    """Recordings by label, with the manifest's source records and warnings."""

    recordings: dict[str, list[Recording]]
    sources: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_recordings(
    fetcher: DebFetcher,
    table: dict[str, list[SourceGlob]],
    min_seconds: float = 0.0,
    trim: bool = False,
) -> SourceSet:
    """Fetch the packages of ``table`` (label -> globs), decode every matching file, drop duplicates by
    PCM hash (first label in table order wins) and files shorter than ``min_seconds`` after trimming."""
    packages: dict[str, UnpackedPackage] = {}
    used: dict[str, list[str]] = {}
    seen: set[str] = set()
    recordings: dict[str, list[Recording]] = {}
    warnings: list[str] = []
    for label, globs in table.items():
        found: list[Recording] = []
        for glob in globs:
            if glob.package not in packages:
                packages[glob.package] = fetcher.fetch(glob.package)
                used[glob.package] = []
            pkg = packages[glob.package]
            files = _package_files(pkg, glob.pattern)
            if not files:
                warnings.append(f"{label}: {glob.package} {pkg.version} has no file matching {glob.pattern}")
            for member, data in files:
                audio = decode_audio(data, f"{glob.package} {pkg.version}: {member}")
                if trim:
                    start, end = trim_silence(audio, -40.0)
                    audio = audio[start:end]
                if len(audio) < min_seconds * SAMPLE_RATE_HZ or rms(audio) < 1e-4:
                    continue
                digest = pcm_sha1(audio)
                if digest in seen:
                    continue
                seen.add(digest)
                found.append(Recording(label, glob.package, pkg.version, member, audio, digest))
                used[glob.package].append(member.split("!", 1)[0])
        recordings[label] = found
    sources = [deb_record(pkg, sorted(set(used[name]))) for name, pkg in packages.items()]
    return SourceSet(recordings, sources, warnings)


def split_at_silences(
    audio: np.ndarray,
    threshold_db: float = -35.0,
    min_gap_s: float = 0.25,
    min_event_s: float = 0.1,
    max_event_s: float = 8.0,
) -> list[tuple[int, int]]:
    """``(start, end)`` of the sounding parts of a file: frames (10 ms) over ``threshold_db`` re. the
    peak, joined across gaps shorter than ``min_gap_s``; parts over ``max_event_s`` are cut."""
    frame = SAMPLE_RATE_HZ // 100
    n = len(audio) // frame
    if n == 0:
        return []
    frame_rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = frame_rms >= np.max(np.abs(audio)) * db_to_gain(threshold_db)
    parts: list[list[int]] = []
    gap = int(min_gap_s * 100)
    for i in np.flatnonzero(loud):
        if parts and i - parts[-1][1] <= gap:
            parts[-1][1] = i + 1
        else:
            parts.append([int(i), int(i) + 1])
    out = []
    max_frames = int(max_event_s * 100)
    for start, end in parts:
        end = min(end, start + max_frames)
        if end - start >= min_event_s * 100:
            out.append((start * frame, min(len(audio), end * frame)))
    return out


# --- procedural stand-ins (smoke profiles: no download) --------------------------------------------------


def _tone(n: int, freq_hz: float, decay_s: float, harmonics: int = 4) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE_HZ
    wave = sum(np.sin(2 * np.pi * k * freq_hz * t) / k for k in range(1, harmonics + 1))
    return (wave * np.exp(-t / decay_s)).astype(np.float32)


def procedural_sound(kind: str, seconds: float, seed: int, *keys: str | int) -> np.ndarray:
    """A seeded synthetic sound of a ``kind``: beds (``hiss``, ``rumble``, ``chirps``, ``drone``) or
    events (``bell``, ``knock``, ``buzz``); variants of one kind differ in pitch, colour and rhythm."""
    rng = child_rng(seed, "procedural", kind, *keys)
    n = int(seconds * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    if kind == "hiss":  # rain-like: white noise, fast random gating, high shelf
        gate = 0.6 + 0.4 * np.repeat(rng.random(n // 400 + 1), 400)[:n]
        out = apply_sos(white_noise(n, rng) * gate, high_shelf(2000, rng.uniform(3, 9), SAMPLE_RATE_HZ))
    elif kind == "rumble":  # traffic-like: brown noise with slow swells
        swell = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
        out = pink_noise(n, rng) * 0.2 + np.cumsum(white_noise(n, rng)) / 300 * swell
        out = out - np.convolve(out, np.ones(400) / 400, mode="same")
    elif kind == "chirps":  # bird-like: short frequency sweeps over soft pink noise
        out = 0.1 * pink_noise(n, rng)
        for _ in range(int(seconds * rng.uniform(2, 5))):
            start, length = int(rng.integers(0, max(1, n - 2400))), int(rng.integers(800, 2400))
            f0 = rng.uniform(2000, 4500)
            tt = np.arange(length) / SAMPLE_RATE_HZ
            sweep = np.sin(2 * np.pi * (f0 * tt + rng.uniform(-3e4, 3e4) * tt**2)) * np.hanning(length)
            out[start : start + length] += sweep
    elif kind == "drone":  # machine-like: harmonic hum with a slow beat
        f0 = rng.uniform(60, 180)
        out = _tone(n, f0, 1e9, harmonics=6) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        out = out + 0.2 * white_noise(n, rng)
    elif kind == "bell":
        out = _tone(n, rng.uniform(500, 1500), rng.uniform(0.2, 0.6))
    elif kind == "knock":
        out = np.zeros(n, dtype=np.float32)
        for k in range(int(rng.integers(2, 5))):
            start = int(k * rng.uniform(0.12, 0.2) * SAMPLE_RATE_HZ)
            if start < n:
                burst = white_noise(min(600, n - start), rng) * np.exp(-np.arange(min(600, n - start)) / 120)
                out[start : start + len(burst)] += burst
    elif kind == "buzz":
        out = _tone(n, rng.uniform(80, 200), 1e9, harmonics=8) * np.hanning(n)
    else:
        raise ValueError(f"unknown procedural sound {kind!r}")
    return set_rms_dbfs(np.asarray(out, dtype=np.float32), -20.0)


def procedural_recordings(table: dict[str, str], per_label: int, seconds: float, seed: int) -> SourceSet:
    """``per_label`` procedural recordings of each label (label -> kind); the smoke profiles' sources."""
    recordings = {}
    for label, kind in table.items():
        recordings[label] = []
        for k in range(per_label):
            audio = procedural_sound(kind, seconds, seed, label, k)
            recordings[label].append(
                Recording(label, "generated", "devicelab", f"{kind}/{label}-{k}", audio, pcm_sha1(audio))
            )
    return SourceSet(recordings, [generated_record("procedural beds and events (smoke profile)")])


# --- looping and filtering ------------------------------------------------------------------------------


def loop_excerpt(audio: np.ndarray, start: int, n: int, crossfade: int = 800) -> np.ndarray:
    """``n`` samples of ``audio`` from ``start``, looping (linear ``crossfade`` at each wrap) when short."""
    if len(audio) == 0:
        raise ValueError("cannot loop an empty recording")
    start %= len(audio)
    if start + n <= len(audio):
        return audio[start : start + n].astype(np.float32)
    crossfade = min(crossfade, len(audio) // 4)
    out = audio.astype(np.float32)
    ramp = np.linspace(0.0, 1.0, crossfade, dtype=np.float32)
    while len(out) < start + n:
        if crossfade:
            mixed = out[-crossfade:] * (1 - ramp) + audio[:crossfade] * ramp
            out = np.concatenate([out[:-crossfade], mixed, audio[crossfade:]])
        else:
            out = np.concatenate([out, audio])
    out = out[start:]
    return out[:n]


def lowpass(audio: np.ndarray, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """Butterworth low-pass (second-order sections)."""
    if cutoff_hz >= SAMPLE_RATE_HZ / 2:
        return audio
    return apply_sos(audio, butter(order, cutoff_hz, btype="low", fs=SAMPLE_RATE_HZ, output="sos"))


def highpass(audio: np.ndarray, cutoff_hz: float, order: int = 2) -> np.ndarray:
    return apply_sos(audio, butter(order, cutoff_hz, btype="high", fs=SAMPLE_RATE_HZ, output="sos"))


# --- cities: room, EQ, hum, noise floor, device ---------------------------------------------------------

DEVICES = ("a", "b", "c", "s1", "s2", "s3")
DEVICE_DESCRIPTIONS = {
    "a": "reference (no device colouring)",
    "b": "telephone band 300-3400 Hz and GSM 6.10 at 8 kHz (sox)",
    "c": "mu-law 8-bit at 8 kHz (numpy)",
    "s1": "MP3 at 32 kbit/s (sox, libsox-fmt-mp3)",
    "s2": "cheap microphone: 150 Hz high-pass, +6 dB at 3 kHz, tanh clipping",
    "s3": "fixed random 3-band EQ of +-9 dB",
}


@dataclass(frozen=True)
class CitySignature:
    """A recording environment (corpora.md, game-scenes "Environments"): every clip of a city passes
    through its room, EQ, mains hum, noise floor and device."""

    name: str
    device: str
    seen: bool
    rt60_s: float
    wet_db: float  # reverberant part re. the dry part
    eq_bands: tuple[dict, ...]
    mains_hz: float
    hum_dbfs: float
    noise_floor_dbfs: float
    device_eq_bands: tuple[dict, ...] = ()  # device s3 only

    def describe(self) -> dict[str, Any]:
        return {
            "city": self.name,
            "device": self.device,
            "seen": self.seen,
            "rt60_s": round(self.rt60_s, 3),
            "wet_db": round(self.wet_db, 2),
            "eq_bands": [{k: round(v, 3) for k, v in b.items()} for b in self.eq_bands],
            "mains_hz": self.mains_hz,
            "hum_dbfs": round(self.hum_dbfs, 2),
            "noise_floor_dbfs": round(self.noise_floor_dbfs, 2),
            "device_eq_bands": [{k: round(v, 3) for k, v in b.items()} for b in self.device_eq_bands],
        }


def make_city(name: str, device: str, seen: bool, seed: int) -> CitySignature:
    """A seeded city signature: T60 0.2-1.2 s, 3-band EQ of +-6 dB, 50 or 60 Hz hum, noise floor."""
    rng = child_rng(seed, "city", name)
    edges = np.geomspace(150.0, 5000.0, 4)
    bands = tuple(
        {
            "freq_hz": float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
            "gain_db": float(rng.uniform(-6.0, 6.0)),
            "q": float(rng.uniform(0.7, 1.5)),
        }
        for lo, hi in zip(edges[:-1], edges[1:])
    )
    device_bands: tuple[dict, ...] = ()
    if device == "s3":
        device_rng = child_rng(seed, "device", "s3")
        device_bands = tuple(
            {
                "freq_hz": float(f),
                "gain_db": float(device_rng.choice([-1, 1]) * device_rng.uniform(5.0, 9.0)),
                "q": float(device_rng.uniform(0.7, 1.5)),
            }
            for f in (300.0, 1200.0, 3500.0)
        )
    return CitySignature(
        name=name,
        device=device,
        seen=seen,
        rt60_s=float(rng.uniform(0.2, 1.2)),
        wet_db=float(rng.uniform(-15.0, -6.0)),
        eq_bands=bands,
        mains_hz=float(rng.choice([50.0, 60.0])),
        hum_dbfs=float(rng.uniform(-60.0, -48.0)),
        noise_floor_dbfs=float(rng.uniform(-66.0, -54.0)),
        device_eq_bands=device_bands,
    )


def room_impulse_response(rt60_s: float, seed: int, *keys: str | int) -> np.ndarray:
    """Synthetic room: exponentially decaying Gaussian noise (60 dB decay in ``rt60_s``), unit energy,
    without the direct path (the caller adds the dry signal)."""
    rng = child_rng(seed, "rir", *keys)
    n = int(min(rt60_s, 1.5) * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60_s)
    tail[: int(0.003 * SAMPLE_RATE_HZ)] = 0.0  # 3 ms pre-delay
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def apply_room(audio: np.ndarray, rir: np.ndarray, wet_db: float) -> np.ndarray:
    """Dry signal plus its reverberation at ``wet_db`` (RMS of the wet part re. the dry part)."""
    wet = fftconvolve(audio, rir)[: len(audio)]
    return (audio + wet * (rms(audio) / rms(wet)) * db_to_gain(wet_db)).astype(np.float32)


def _sox_mp3_roundtrip(audio: np.ndarray, kbps: int = 32) -> np.ndarray:
    sox = shutil.which("sox")
    if sox is None:
        raise MissingToolError("`sox` not found; install the Debian packages `sox libsox-fmt-all`")
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(SAMPLE_RATE_HZ)]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    encode = subprocess.run(
        [sox, "-R", "-D", *raw, "-", "-t", "mp3", "-C", str(kbps), "-"], input=pcm, capture_output=True
    )
    if encode.returncode != 0:
        detail = encode.stderr.decode(errors="replace")[-200:]
        raise MissingToolError(f"sox cannot write MP3 (install `libsox-fmt-mp3`): {detail}")
    decode = subprocess.run(
        [sox, "-R", "-D", "-t", "mp3", "-", *raw, "-"], input=encode.stdout, capture_output=True
    )
    if decode.returncode != 0:
        raise RuntimeError(f"sox MP3 decode failed: {decode.stderr.decode(errors='replace')[-200:]}")
    out = np.frombuffer(decode.stdout, dtype="<i2").astype(np.float32) / 32768.0
    return np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)]


def apply_device(audio: np.ndarray, city: CitySignature) -> np.ndarray:
    """The city's device chain (:data:`DEVICE_DESCRIPTIONS`)."""
    from devicelab.audio.channel import mulaw_roundtrip

    if city.device == "a":
        return audio
    if city.device == "b":
        return sox_gsm_roundtrip(audio, SAMPLE_RATE_HZ)
    if city.device == "c":
        return mulaw_roundtrip(audio, SAMPLE_RATE_HZ)
    if city.device == "s1":
        return _sox_mp3_roundtrip(audio, 32)
    if city.device == "s2":
        coloured = apply_sos(highpass(audio, 150.0), peaking(3000.0, 6.0, 1.0, SAMPLE_RATE_HZ))
        drive = 4.0
        return (np.tanh(drive * coloured) / drive).astype(np.float32)
    if city.device == "s3":
        return apply_sos(audio, eq_sos(list(city.device_eq_bands), SAMPLE_RATE_HZ))
    raise ValueError(f"unknown device {city.device!r}; devices: {', '.join(DEVICES)}")


def through_city(
    audio: np.ndarray, city: CitySignature, seed: int, clip_id: str, lowpass_hz: float
) -> np.ndarray:
    """Room, EQ, hum and noise floor of ``city``, the common low-pass, then its device (game-scenes)."""
    rng = child_rng(seed, "city-noise", clip_id)
    n = len(audio)
    out = apply_room(audio, room_impulse_response(city.rt60_s, seed, city.name), city.wet_db)
    out = apply_sos(out, eq_sos(list(city.eq_bands), SAMPLE_RATE_HZ))
    out = out + hum_noise(n, SAMPLE_RATE_HZ, rng, mains_hz=city.mains_hz) * db_to_gain(city.hum_dbfs)
    out = out + pink_noise(n, rng) * db_to_gain(city.noise_floor_dbfs)
    out = lowpass(out, lowpass_hz)
    return np.clip(apply_device(out, city), -1.0, 1.0).astype(np.float32)
