"""The scene task in memory: log-mel features of every clip, labels, environments and the splits.

Reads a TAU Urban Acoustic Scenes 2019 development root (``--data``) or the offline corpus ``game-scenes``
(same layout) through :class:`devicelab.data.datasets.tau2019.TAU2019`. Seen and unseen test clips are
defined by (scene, city) cells as there (spec §6). Features (spec §2.1): mono, 40 log-mel bands of the
magnitude spectrogram, 40 ms periodic Hamming window, 20 ms hop, Slaney mels from 0 Hz to Nyquist with
librosa's area normalisation, ``log(mel + 1e-10)``; standardisation per band uses training-set statistics
and lives in the model (:class:`~devicelab.methods.asc_factorized.model.Standardize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from devicelab.audio.features import LogMel
from devicelab.audio.io import AudioError, read_wav
from devicelab.core.seeding import child_rng
from devicelab.data.datasets.tau2019 import TAU2019, SceneClip, TAU2019Error

ENV_KEYS = ("city", "location", "device", "city_device")


class SceneLogMel(LogMel):
    """DCASE2019 task 1A baseline features: ``task1a.yaml`` (40 ms Hamming, 20 ms hop, 40 Slaney mels,
    magnitude); filter normalisation and ``log(mel + 1e-10)`` as librosa's defaults [reconstruction]."""

    def __init__(
        self, sample_rate_hz: int = 16000, n_mels: int = 40, window_ms: float = 40.0, hop_ms: float = 20.0
    ):
        win_length = int(round(window_ms * sample_rate_hz / 1000))
        n_fft = 1 << (win_length - 1).bit_length()  # 640 -> 1024 at 16 kHz, 1920 -> 2048 at 48 kHz
        super().__init__(
            sample_rate_hz,
            n_fft,
            win_length,
            int(round(hop_ms * sample_rate_hz / 1000)),
            n_mels,
            mel_scale="slaney",
            mel_norm="slaney",
            power=1.0,
            log_offset=1e-10,
        )
        n = np.arange(win_length)
        hamming = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / win_length)  # periodic, as scipy's sym=False
        left = (n_fft - win_length) // 2
        window = np.pad(hamming, (left, n_fft - win_length - left))
        self.window.copy_(torch.tensor(window, dtype=torch.float32))


def environment_of(clip: SceneClip, env_key: str) -> str:
    """The environment of a clip under ``env_key`` (spec §2.4): city (``identifier.split('-')[0]``),
    location (the identifier), device, or city and device."""
    if env_key == "city":
        return clip.identifier.split("-")[0]
    if env_key == "location":
        return clip.identifier
    if env_key == "device":
        return clip.device
    if env_key == "city_device":
        return f"{clip.identifier.split('-')[0]}-{clip.device}"
    raise ValueError(f"env_key={env_key!r}: expected one of {', '.join(ENV_KEYS)}")


@dataclass
class SplitIndex:
    """Clip indices (into :attr:`SceneTask.features`) of one split's parts."""

    name: str
    train: np.ndarray
    validation: np.ndarray
    test_seen: np.ndarray
    test_unseen: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {
            "train": self.train,
            "validation": self.validation,
            "seen": self.test_seen,
            "unseen": self.test_unseen,
        }


@dataclass
class SceneTask:
    """Everything one experiment trains and evaluates on; features (N, 1, n_mels, frames), raw log-mel."""

    features: torch.Tensor
    scenes: torch.Tensor  # (N,) scene index into scene_names
    envs: torch.Tensor  # (N,) environment index into env_names (config.env_key)
    cities: list[str]
    locations: list[str]
    names: list[str]
    scene_names: tuple[str, ...]
    env_names: tuple[str, ...]
    splits: dict[str, SplitIndex]
    source: str  # "tau2019" or the corpus name
    skipped: list[str] = field(default_factory=list)

    @property
    def city_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.cities)))

    def band_statistics(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-band mean and std (n_mels,) over the clips ``indices`` (training set) and all frames."""
        x = self.features[torch.as_tensor(indices, dtype=torch.long)]  # (n, 1, F, T)
        mean = x.mean(dim=(0, 1, 3))
        std = x.std(dim=(0, 1, 3)).clamp_min(1e-5)
        return mean, std


def validation_locations(clips: Sequence[SceneClip], fraction: float, seed: int) -> set[str]:
    """About ``fraction`` of each city's training locations (seeded; at least one where a city has two or
    more), held out for best-epoch selection: location-disjoint and balanced over cities (spec §2.2)."""
    if fraction <= 0:
        return set()
    by_city: dict[str, list[str]] = {}
    for c in clips:
        by_city.setdefault(c.city, [])
        if c.identifier not in by_city[c.city]:
            by_city[c.city].append(c.identifier)
    held: set[str] = set()
    for city, locations in sorted(by_city.items()):
        if len(locations) < 2:
            continue
        k = min(len(locations) - 1, max(1, round(fraction * len(locations))))
        order = child_rng(seed, "validation", city).permutation(sorted(locations))
        held.update(str(loc) for loc in order[:k])
    return held


def load_task(
    root: str | Path,
    *,
    splits: Sequence[str] = ("official",),
    unseen_cities: Sequence[str] = ("lisbon", "lyon"),
    env_key: str = "city",
    sample_rate_hz: int = 16000,
    clip_seconds: float = 5.0,
    n_mels: int = 40,
    window_ms: float = 40.0,
    hop_ms: float = 20.0,
    validation_fraction: float = 0.0,
    seed: int = 0,
    source: str = "tau2019",
    skip_bad: bool = False,
) -> SceneTask:
    """Check ``root`` (a TAU 2019 development root or a game-scenes corpus), form the splits and compute the
    features of every clip they use. A bad audio file is an :class:`AudioError` naming it; with
    ``skip_bad`` it is dropped from every split and listed in ``SceneTask.skipped``."""
    if env_key not in ENV_KEYS:
        raise ValueError(f"env_key={env_key!r}: expected one of {', '.join(ENV_KEYS)}")
    corpus = TAU2019(root)
    formed = {name: corpus.split(name, unseen_cities) for name in splits}  # type: ignore[arg-type]
    for name, split in formed.items():
        if not split.train:
            raise TAU2019Error(f"{corpus.root}: split {name} has no training clips")
        if not split.test:
            raise TAU2019Error(f"{corpus.root}: split {name} has no test clips")
    used: dict[str, SceneClip] = {}
    for split in formed.values():
        for clip in [*split.train, *split.test]:
            used.setdefault(clip.filename, clip)
    frontend = SceneLogMel(sample_rate_hz, n_mels, window_ms, hop_ms)
    n_samples = int(round(clip_seconds * sample_rate_hz))
    waves, kept, skipped = [], [], []
    for clip in used.values():
        try:
            audio, _ = read_wav(clip.path, sample_rate_hz)  # mono mix of every channel, resampled
        except AudioError as e:
            if not skip_bad:
                raise
            skipped.append(str(e))
            continue
        wave = np.zeros(n_samples, dtype=np.float32)
        wave[: min(len(audio), n_samples)] = audio[:n_samples]
        waves.append(wave)
        kept.append(clip)
    if not kept:
        raise TAU2019Error(f"{corpus.root}: no readable audio clips")
    with torch.no_grad():
        all_waves = torch.from_numpy(np.stack(waves))
        features = torch.cat([frontend(all_waves[i : i + 64]) for i in range(0, len(kept), 64)]).unsqueeze(1)
    scene_names = corpus.scenes
    env_of = [environment_of(c, env_key) for c in kept]
    env_names = tuple(sorted(set(env_of)))
    position = {c.filename: i for i, c in enumerate(kept)}

    def index(clips: Sequence[SceneClip]) -> np.ndarray:
        return np.asarray([position[c.filename] for c in clips if c.filename in position], dtype=np.int64)

    indices = {}
    for name, split in formed.items():
        held = validation_locations(split.train, validation_fraction, seed)
        indices[name] = SplitIndex(
            name,
            index([c for c in split.train if c.identifier not in held]),
            index([c for c in split.train if c.identifier in held]),
            index(split.test_seen),
            index(split.test_unseen),
        )
    return SceneTask(
        features=features,
        scenes=torch.tensor([scene_names.index(c.scene) for c in kept]),
        envs=torch.tensor([env_names.index(e) for e in env_of]),
        cities=[c.city for c in kept],
        locations=[c.identifier for c in kept],
        names=[c.filename for c in kept],
        scene_names=scene_names,
        env_names=env_names,
        splits=indices,
        source=source,
        skipped=skipped,
    )
