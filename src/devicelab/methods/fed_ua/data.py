"""The fed-ua task: per-user train / warm-up / test log-mel features and the unseen users (spec §3, §5, §6).

Reads the VoxCeleb1 layout (``--data`` or the ``synth-speakers`` corpus, whose ``wav/`` and ``vox1_meta.csv``
follow it), computes log-mel features once and caches them beside the data (``features/*.safetensors``), and
splits every user by session (video), never by segment of one recording. ``synthetic_task`` generates the
feature-level "speakers" of spec §5 for tests and the smoke profile.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from devicelab.audio.features import LogMel
from devicelab.audio.io import read_wav
from devicelab.core.seeding import child_rng
from devicelab.data.datasets.voxceleb import TEST_SPEAKERS, VoxCeleb1, VoxCelebError, VoxUtterance

SAMPLE_RATE_HZ = 16000


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end: 25/10 ms windows at 16 kHz, a centre crop, per-utterance mean normalisation."""

    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    crop_s: float = 1.5

    def key(self) -> str:
        return hashlib.sha1(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class UserSplit:
    """One user's features (N, F, T), float16 in memory, split by session."""

    speaker: str
    train: torch.Tensor
    warmup: torch.Tensor
    test: torch.Tensor


@dataclass
class ClientData:
    """What one client holds: its training inputs, labels (all its own index) and warm-up inputs."""

    pid: int
    inputs: torch.Tensor
    labels: torch.Tensor
    warmup: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass
class SpeakerTask:
    """Training-side users (original first, then late joiners) and unseen users; ``source`` names the data."""

    users: list[UserSplit]
    unseen: list[UserSplit]
    original_users: int
    late_users: int
    source: str
    notes: list[str] = field(default_factory=list)

    def client_data(self, pid: int) -> ClientData:
        """Partition ``pid``'s local data (float32)."""
        if not 0 <= pid < len(self.users):
            raise IndexError(f"partition {pid}: the task has {len(self.users)} users")
        u = self.users[pid]
        inputs = u.train.float()
        return ClientData(pid, inputs, torch.full((len(inputs),), pid, dtype=torch.long), u.warmup.float())

    def restricted(self, num_users: int) -> SpeakerTask:
        """The first ``num_users`` training users and no unseen users (what the Flower cross-check ships)."""
        return SpeakerTask(self.users[:num_users], [], min(num_users, self.original_users), 0, self.source)


# ----------------------------------------------------------------------------------------------------------
# Generated feature-level speakers (spec §5, tests and smoke)


def synthetic_task(
    original_users: int = 12,
    late_users: int = 4,
    unseen_users: int = 8,
    utterances: int = 12,
    sessions: int = 4,
    frames: int = 20,
    dims: int = 40,
    seed: int = 0,
) -> SpeakerTask:
    """x_t = tanh(A z_u + B s + C e_t) + 0.1 ε_t with identity z_u ~ N(0, I_16), session s ~ N(0, I_4), frame
    noise e_t ~ N(0, I_8) and fixed random A, B, C (spec §5). Split by session: the last session is the
    test split, the one before it the warm-up split."""
    if sessions < 3 or utterances % sessions:
        raise ValueError(f"synthetic_task: need ≥ 3 sessions dividing the {utterances} utterances")
    rng = child_rng(seed, "synthetic-speakers")
    A, B, C = rng.normal(size=(dims, 16)), rng.normal(size=(dims, 4)), 0.5 * rng.normal(size=(dims, 8))
    per = utterances // sessions
    splits = []
    for u in range(original_users + late_users + unseen_users):
        z = rng.normal(size=16)
        x = np.empty((utterances, dims, frames), dtype=np.float32)
        for s in range(sessions):
            sess = rng.normal(size=4)
            for i in range(per):
                e = rng.normal(size=(8, frames))
                base = np.tanh((A @ z)[:, None] + (B @ sess)[:, None] + C @ e)
                x[s * per + i] = base + 0.1 * rng.normal(size=(dims, frames))
        t = torch.from_numpy(x).half()
        splits.append(UserSplit(f"u{u:03d}", t[: -2 * per], t[-2 * per : -per], t[-per:]))
    n = original_users + late_users
    return SpeakerTask(splits[:n], splits[n:], original_users, late_users, "synthetic")


# ----------------------------------------------------------------------------------------------------------
# VoxCeleb1 layout (real data or synth-speakers)


def read_meta(path: Path) -> dict[str, str]:
    """speaker id -> Set of ``vox1_meta.csv`` (TAB-separated); names the file and the missing column."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "VoxCeleb1 ID" not in rows[0] or "Set" not in rows[0]:
        raise VoxCelebError(f"{path}: expected TAB-separated columns 'VoxCeleb1 ID' and 'Set'")
    return {r["VoxCeleb1 ID"].strip(): (r["Set"] or "").strip() for r in rows}


def vox_utterances(root: Path) -> tuple[list[VoxUtterance], dict[str, str]]:
    """Every utterance under ``root/wav`` or ``root/{dev,test}/wav`` and the speakers' sets.

    The speakers listed as dev or test in ``vox1_meta.csv`` (or the published split without it) must all
    have a folder; a missing one is named.
    """
    root = Path(root)
    if not root.is_dir():
        raise VoxCelebError(f"{root}: data folder missing")
    if (root / "wav").is_dir():
        trees = [root]
    elif (root / "dev" / "wav").is_dir() or (root / "test" / "wav").is_dir():
        trees = [root / part for part in ("dev", "test") if (root / part / "wav").is_dir()]
    else:
        raise VoxCelebError(f"{root}: neither wav/ nor dev/wav/ and test/wav/ found (VoxCeleb1 layout)")
    utterances = [u for tree in trees for u in VoxCeleb1(tree).utterances]
    present = {u.speaker for u in utterances}
    meta_path = root / "vox1_meta.csv"
    if meta_path.is_file():
        sets = {s: v for s, v in read_meta(meta_path).items() if v in ("dev", "test")}
        missing = sorted(set(sets) - present)
        if missing:
            where = " or ".join(str(t / "wav") for t in trees)
            raise VoxCelebError(
                f"{meta_path}: speaker {missing[0]} has no folder in {where}"
                + (f" ({len(missing) - 1} more missing)" if len(missing) > 1 else "")
            )
    else:
        sets = {s: ("test" if s in TEST_SPEAKERS else "dev") for s in present}
    return [u for u in utterances if u.speaker in sets], sets


def logmel_features(paths: list[Path], cfg: FeatureConfig) -> torch.Tensor:
    """(N, n_mels, T) log-mel of a centre crop of ``crop_s`` (zero-padded when shorter), mean-normalised
    over time per band; T = 1 + crop samples / hop."""
    frontend = LogMel(
        SAMPLE_RATE_HZ,
        n_fft=512,
        win_length=int(SAMPLE_RATE_HZ * cfg.win_ms / 1000),
        hop_length=int(SAMPLE_RATE_HZ * cfg.hop_ms / 1000),
        n_mels=cfg.n_mels,
    )
    crop = int(cfg.crop_s * SAMPLE_RATE_HZ)
    out = []
    for start in range(0, len(paths), 256):
        batch = np.zeros((len(paths[start : start + 256]), crop), dtype=np.float32)
        for i, path in enumerate(paths[start : start + 256]):
            audio, sr = read_wav(path)
            if sr != SAMPLE_RATE_HZ:
                raise VoxCelebError(f"{path}: {sr} Hz, expected {SAMPLE_RATE_HZ} Hz")
            offset = max(0, (len(audio) - crop) // 2)
            piece = audio[offset : offset + crop]
            batch[i, : len(piece)] = piece
        with torch.no_grad():
            mel = frontend(torch.from_numpy(batch))  # (B, F, T)
        out.append(mel - mel.mean(dim=2, keepdim=True))
    return torch.cat(out).half()


def cached_features(root: Path, utterances: list[VoxUtterance], cfg: FeatureConfig) -> torch.Tensor:
    """Features of ``utterances`` from ``root/features/fed-ua-<key>.safetensors``, computed and written
    atomically on first use (spec §5: computed once per corpus build)."""
    from safetensors.torch import load_file, save_file

    rels = [u.rel for u in utterances]
    digest = hashlib.sha1("\n".join(rels).encode()).hexdigest()[:10]
    path = Path(root) / "features" / f"fed-ua-{cfg.key()}-{digest}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    feats = logmel_features([u.path for u in utterances], cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({"features": feats.contiguous()}, str(tmp), metadata={"config": json.dumps(cfg.__dict__)})
    tmp.replace(path)
    return feats


def split_by_session(
    speaker: str, sessions: dict[str, list[int]], warmup_sessions: int, test_sessions: int, seed: int
) -> tuple[list[int], list[int], list[int]] | None:
    """(train, warm-up, test) utterance indices of one speaker by a seeded choice of sessions; None when the
    speaker has too few sessions."""
    names = sorted(sessions)
    if len(names) < warmup_sessions + test_sessions + 1:
        return None
    order = [names[i] for i in child_rng(seed, "sessions", speaker).permutation(len(names))]
    test, warm, train = (
        order[:test_sessions],
        order[test_sessions : test_sessions + warmup_sessions],
        order[test_sessions + warmup_sessions :],
    )
    return tuple(sorted(i for s in part for i in sessions[s]) for part in (train, warm, test))  # type: ignore[return-value]


def load_vox_task(
    root: Path,
    original_users: int,
    late_users: int,
    unseen_users: int = 0,
    unseen_from_dev: bool = False,
    warmup_sessions: int = 1,
    test_sessions: int = 1,
    features: FeatureConfig | None = None,
    split_seed: int = 0,
    source: str = "voxceleb1",
) -> SpeakerTask:
    """Users of a VoxCeleb1-layout root: ``original_users`` + ``late_users`` dev speakers (seeded choice), the
    unseen ones from the test set (plus the remaining dev speakers with ``unseen_from_dev``; 0 = all)."""
    features = features or FeatureConfig()
    utterances, sets = vox_utterances(root)
    notes: list[str] = []
    by_speaker: dict[str, dict[str, list[int]]] = {}
    for i, u in enumerate(utterances):
        by_speaker.setdefault(u.speaker, {}).setdefault(u.session, []).append(i)
    splits = {}
    for spk, sessions in sorted(by_speaker.items()):
        split = split_by_session(spk, sessions, warmup_sessions, test_sessions, split_seed)
        if split is None:
            notes.append(f"{spk}: {len(sessions)} sessions, too few to split; left out")
        else:
            splits[spk] = split
    dev = [s for s in sorted(splits) if sets.get(s) == "dev"]
    test = [s for s in sorted(splits) if sets.get(s) == "test"]
    need = original_users + late_users
    if len(dev) < need:
        raise VoxCelebError(f"{root}: {len(dev)} usable dev speakers, the config needs {need}")
    order = [dev[i] for i in child_rng(split_seed, "users").permutation(len(dev))]
    training, rest = order[:need], sorted(order[need:])
    unseen = test + (rest if unseen_from_dev else [])
    if unseen_users:
        if len(unseen) < unseen_users:
            raise VoxCelebError(f"{root}: {len(unseen)} unseen speakers, the config needs {unseen_users}")
        unseen = unseen[:unseen_users]
    if not unseen:
        raise VoxCelebError(f"{root}: no unseen (test) speakers")
    chosen = training + unseen
    wanted = sorted({i for s in chosen for part in splits[s] for i in part})
    feats = cached_features(root, [utterances[i] for i in wanted], features)
    row = {i: r for r, i in enumerate(wanted)}

    def user(spk: str) -> UserSplit:
        parts = [feats[[row[i] for i in part]] for part in splits[spk]]
        return UserSplit(spk, *parts)

    return SpeakerTask(
        [user(s) for s in training], [user(s) for s in unseen], original_users, late_users, source, notes
    )
