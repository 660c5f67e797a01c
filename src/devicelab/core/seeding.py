"""Seeding and random-state capture, so a resumed run continues with exactly the same random streams."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask torch for deterministic kernels where cheap."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stable_key(key: int | str) -> int:
    """A 63-bit integer for a seed key: ints as they are, strings by the SHA-256 of their full text."""
    if isinstance(key, int):
        return key % 2**63
    return int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "little") % 2**63


def child_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A NumPy generator for one item, keyed by a stable id (independent of order and worker count)."""
    return np.random.default_rng(np.random.SeedSequence([seed % 2**63, *map(stable_key, keys)]))


def torch_generator(seed: int, *keys: int) -> torch.Generator:
    """A torch generator for one stream (e.g. an epoch's shuffle order), keyed like :func:`child_rng`."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed % 2**63, *keys]).generate_state(1, np.uint64)[0] >> 1))
    return g


def get_rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """The global random states: tensors (torch CPU/CUDA) and JSON-safe values (Python, NumPy)."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    plain = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
    }
    return tensors, plain


def set_rng_state(tensors: dict[str, torch.Tensor], plain: dict) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if states:
            torch.cuda.set_rng_state_all(states)
    v, state, gauss = plain["python"]
    random.setstate((v, tuple(state), gauss))
    name, keys, pos, has_gauss, g = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, g))
