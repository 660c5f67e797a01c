"""The sed-tritrain task in memory: log-mel features (float16, computed once per run), frame targets, tags
and reference events of every DESED subset, read by :mod:`devicelab.data.datasets.desed` from ``--data`` or
the offline corpus ``game-events`` (the same layout).

Front ends (spec §2.1): ``"full"`` is the baseline's (44.1 kHz, n_fft 2048, Hamming, hop 511, 64 Slaney mels
of the magnitude, natural log, 864 frames); ``"quick"`` is 16 kHz, n_fft 1024, hop 640, 64 mels, 250 frames
[reconstruction]. Each mel bin is standardised with statistics of the training subsets; the standardiser is
part of the deployed model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from devicelab.audio.features import LogMel
from devicelab.audio.io import AudioError
from devicelab.core.seeding import child_rng
from devicelab.data.datasets.desed import CLIP_SECONDS, DESED, SedClip, SedSubset, load_clip
from devicelab.methods.sed_tritrain.config import DesedPaths, SedTritrainConfig
from devicelab.methods.sed_tritrain.labels import encode_strong, encode_tags

EventTuple = tuple[str, float, float, str]
FRONT_ENDS = {
    # sample rate, n_fft, hop, frames, window
    "quick": (16000, 1024, 640, 250, "hann"),
    "full": (44100, 2048, 511, 864, "hamming"),
}
N_MELS = 64


class SedFrontEnd(nn.Module):
    """Waveform (B, samples) -> log-mel (B, 1, frames, 64), padded or cut to ``frames`` (spec §2.1)."""

    def __init__(self, kind: str = "quick"):
        super().__init__()
        sr, n_fft, hop, frames, window = FRONT_ENDS[kind]
        self.sample_rate_hz, self.hop_length, self.frames = sr, hop, frames
        self.logmel = LogMel(
            sample_rate_hz=sr,
            n_fft=n_fft,
            win_length=n_fft,
            hop_length=hop,
            n_mels=N_MELS,
            mel_scale="slaney",
            mel_norm=None,
            power=1.0,  # magnitude [ref]
            log_offset=1e-8,
        )
        if window == "hamming":
            self.logmel.window = torch.hamming_window(n_fft, periodic=True)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.logmel(waveform).transpose(-1, -2)  # (B, T, M)
        if x.shape[-2] < self.frames:
            x = nn.functional.pad(x, (0, 0, 0, self.frames - x.shape[-2]), value=float(np.log(1e-8)))
        return x[..., : self.frames, :].unsqueeze(1)


class Standardize(nn.Module):
    """Per-mel-bin standardisation with fixed statistics: (B, 1, T, M) -> same shape."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float().reshape(1, 1, 1, -1))
        self.register_buffer("std", std.float().clamp_min(1e-5).reshape(1, 1, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclass
class SedSet:
    """One subset in memory: log-mels (N, T, M) float16, frame targets (N, T', K) and tags (N, K) where the
    subset has them, and its reference events for the metrics."""

    name: str
    filenames: list[str]
    features: torch.Tensor
    strong: torch.Tensor | None = None
    tags: torch.Tensor | None = None
    events: list[EventTuple] | None = None

    def __len__(self) -> int:
        return len(self.filenames)

    def take(self, index: Sequence[int], name: str) -> SedSet:
        idx = torch.as_tensor(list(index), dtype=torch.long)
        keep = {self.filenames[i] for i in index}
        return SedSet(
            name,
            [self.filenames[i] for i in index],
            self.features[idx],
            self.strong[idx] if self.strong is not None else None,
            self.tags[idx] if self.tags is not None else None,
            [e for e in self.events if e[0] in keep] if self.events is not None else None,
        )


@dataclass
class SedTask:
    """Everything one experiment trains and evaluates on (spec §5, §6)."""

    classes: tuple[str, ...]
    frontend: str
    frame_s: float  # seconds per output frame
    out_frames: int  # T'
    mean: torch.Tensor  # (M,) training statistics of the log-mels
    std: torch.Tensor
    synthetic: SedSet
    synthetic_valid: SedSet
    weak: SedSet
    weak_valid: SedSet
    unlabeled: SedSet
    validation: SedSet
    test: SedSet
    source: str  # the corpus name or "desed"
    oracle_weak: torch.Tensor | None = None  # hidden strong labels (N, T', K), offline corpus only
    oracle_unlabeled: torch.Tensor | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)  # (subset, filename) without audio
    skipped: list[str] = field(default_factory=list)  # unreadable files dropped with skip_bad

    @property
    def duration_s(self) -> float:
        return CLIP_SECONDS


def time_pooling(config: SedTritrainConfig) -> int:
    p = 1
    for pool_t, _ in config.cnn_pools:
        p *= pool_t
    return p


@torch.no_grad()
def compute_features(
    clips: Sequence[SedClip], frontend: SedFrontEnd, skipped: list[str] | None, batch_size: int = 32
) -> tuple[torch.Tensor, list[int]]:
    """Log-mels (N, T, M) float16 of the readable clips and their indices; an unreadable file raises
    :class:`AudioError` naming it, or with a ``skipped`` list is dropped and listed."""
    feats, kept, batch, batch_idx = [], [], [], []

    def flush() -> None:
        if batch:
            x = frontend(torch.from_numpy(np.stack(batch)))[:, 0]  # (B, T, M)
            feats.append(x.to(torch.float16))
            kept.extend(batch_idx)
            batch.clear()
            batch_idx.clear()

    for i, clip in enumerate(clips):
        try:
            audio = load_clip(clip.path, frontend.sample_rate_hz)
            if not np.isfinite(audio).all():
                raise AudioError(f"{clip.path}: non-finite samples")
        except AudioError as e:
            if skipped is None:
                raise
            skipped.append(str(e))
            continue
        batch.append(audio)
        batch_idx.append(i)
        if len(batch) == batch_size:
            flush()
    flush()
    n_mels, frames = N_MELS, frontend.frames
    return (torch.cat(feats) if feats else torch.zeros(0, frames, n_mels, dtype=torch.float16)), kept


def _events(clip: SedClip) -> list[EventTuple]:
    return [(clip.filename, e.onset_s, e.offset_s, e.label) for e in clip.events or ()]


def _make_set(
    subset: SedSubset, classes: tuple[str, ...], frontend: SedFrontEnd, out_frames: int, frame_s: float,
    skipped: list[str] | None, name: str | None = None,
) -> SedSet:  # fmt: skip
    features, kept = compute_features(subset.clips, frontend, skipped)
    clips = [subset.clips[i] for i in kept]
    names = [c.filename for c in clips]
    strong = tags = events = None
    if subset.kind == "strong":
        strong = torch.from_numpy(
            np.stack([encode_strong(c.events or (), classes, out_frames, frame_s) for c in clips])
            if clips
            else np.zeros((0, out_frames, len(classes)), np.float32)
        )
        events = [e for c in clips for e in _events(c)]
    if subset.kind in ("strong", "weak"):
        tags = torch.from_numpy(
            np.stack([encode_tags(c.tags or (), classes) for c in clips])
            if clips
            else np.zeros((0, len(classes)), np.float32)
        )
    return SedSet(name or subset.name, names, features, strong, tags, events)


def _split(n: int, fraction: float, seed: int, key: str) -> tuple[list[int], list[int]]:
    """(train, held-out) indices: ``fraction`` of ``n`` held out, seeded."""
    order = child_rng(seed, key).permutation(n).tolist()
    n_out = int(round(fraction * n))
    return sorted(order[n_out:]), sorted(order[:n_out])


def _paths(paths: DesedPaths) -> dict[str, str]:
    return {k: v for k, v in vars(paths).items() if v}


def load_task(
    root: Path, config: SedTritrainConfig, source: str, skip_bad: bool = False, with_oracle: bool = True
) -> SedTask:
    """Read a DESED root (or a ``game-events`` corpus) and compute every subset's features and targets."""
    desed = DESED(
        root,
        tsv_paths=_paths(config.desed.paths),
        audio_paths=_paths(config.desed.audio_paths),
        max_missing_fraction=config.desed.max_missing_fraction,
    )
    subsets = {name: desed.subset(name) for name in ("synthetic", "weak", "unlabel_in_domain")}
    subsets |= {name: desed.subset(name) for name in ("validation", "public")}
    frontend = SedFrontEnd(config.frontend)
    sr, _, hop, frames, _ = FRONT_ENDS[config.frontend]
    pooling = time_pooling(config)
    out_frames, frame_s = frames // pooling, pooling * hop / sr
    classes = desed.classes
    skipped: list[str] | None = [] if skip_bad else None
    sets = {n: _make_set(s, classes, frontend, out_frames, frame_s, skipped) for n, s in subsets.items()}
    for name, s in sets.items():
        if len(s) == 0:
            raise AudioError(f"{root / desed.tsv_paths[name]}: subset {name} has no readable clip")
    synthetic, weak = sets["synthetic"], sets["weak"]
    s_train, s_valid = _split(
        len(synthetic), config.synthetic_valid_fraction, config.holdout_seed, "synthetic"
    )
    w_train, w_valid = _split(len(weak), config.weak_valid_fraction, config.holdout_seed, "weak")
    train_feats = torch.cat(
        [synthetic.features[s_train], weak.features[w_train], sets["unlabel_in_domain"].features]
    ).float()  # (N, T, M)
    mean, std = train_feats.mean(dim=(0, 1)), train_feats.std(dim=(0, 1))
    oracle_weak = oracle_unlabeled = None
    if with_oracle and (Path(root) / "metadata" / "oracle").is_dir():
        oracles = []
        for name, s in (("weak", weak), ("unlabel_in_domain", sets["unlabel_in_domain"])):
            table = desed.oracle(name)
            oracles.append(
                torch.from_numpy(
                    np.stack(
                        [encode_strong(table.get(f, ()), classes, out_frames, frame_s) for f in s.filenames]
                    )
                )
            )
        oracle_weak, oracle_unlabeled = oracles[0][w_train], oracles[1]
    return SedTask(
        classes=classes,
        frontend=config.frontend,
        frame_s=frame_s,
        out_frames=out_frames,
        mean=mean,
        std=std,
        synthetic=synthetic.take(s_train, "synthetic"),
        synthetic_valid=synthetic.take(s_valid, "synthetic_valid"),
        weak=weak.take(w_train, "weak"),
        weak_valid=weak.take(w_valid, "weak_valid"),
        unlabeled=sets["unlabel_in_domain"],
        validation=sets["validation"],
        test=sets["public"],
        source=source,
        oracle_weak=oracle_weak,
        oracle_unlabeled=oracle_unlabeled,
        missing=[(s.name, f) for s in subsets.values() for f in s.missing],
        skipped=skipped or [],
    )
