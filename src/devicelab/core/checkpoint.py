"""Checkpoints: safetensors for every tensor, JSON for everything else; never pickle.

A training checkpoint holds the model weights, the optimizer and scheduler state, the global random states and
any extra state of the loop (epoch, best metric, ...). Files are written to a temporary name and renamed, so a
run killed at any moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from devicelab.core.seeding import get_rng_state, set_rng_state

_TENSOR = "__tensor__"


def flatten_state(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested state (dicts, lists) into ``tensors``; return the JSON-safe rest."""
    if isinstance(state, torch.Tensor):
        key = prefix.rstrip(".")
        tensors[key] = state.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(state, Mapping):
        return {"__dict__": [[k, flatten_state(v, f"{prefix}{k}.", tensors)] for k, v in state.items()]}
    if isinstance(state, list | tuple):
        out = [flatten_state(v, f"{prefix}{i}.", tensors) for i, v in enumerate(state)]
        return {"__tuple__": out} if isinstance(state, tuple) else out
    if isinstance(state, float) and (state != state or state in (float("inf"), float("-inf"))):
        return {"__float__": repr(state)}
    return state


def unflatten_state(plain: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(plain, dict):
        if _TENSOR in plain:
            return tensors[plain[_TENSOR]]
        if "__dict__" in plain:
            return {k: unflatten_state(v, tensors) for k, v in plain["__dict__"]}
        if "__tuple__" in plain:
            return tuple(unflatten_state(v, tensors) for v in plain["__tuple__"])
        if "__float__" in plain:
            return float(plain["__float__"])
        return {k: unflatten_state(v, tensors) for k, v in plain.items()}
    if isinstance(plain, list):
        return [unflatten_state(v, tensors) for v in plain]
    return plain


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_state(path: str | Path, state: Mapping[str, Any]) -> None:
    """Save a nested state with tensors to ``path.safetensors`` + ``path.json`` (JSON written last)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    plain = flatten_state(dict(state), "", tensors)
    st = path.with_suffix(".safetensors")
    tmp = st.with_name(st.name + f".tmp-{os.getpid()}")
    # safetensors refuses shared storages; clone the few tensors that alias each other
    seen: set[int] = set()
    for k, t in tensors.items():
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            tensors[k] = t.clone()
        seen.add(ptr)
    save_file(tensors, str(tmp))
    os.replace(tmp, st)
    _atomic_write_text(path.with_suffix(".json"), json.dumps(plain))


def load_state(path: str | Path) -> dict[str, Any]:
    """Load what :func:`save_state` wrote; raises FileNotFoundError naming the missing file."""
    path = Path(path)
    js, st = path.with_suffix(".json"), path.with_suffix(".safetensors")
    for p in (js, st):
        if not p.exists():
            raise FileNotFoundError(f"checkpoint file missing: {p}")
    try:
        plain = json.loads(js.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{js}: not a valid checkpoint index ({e})") from None
    return unflatten_state(plain, load_file(str(st)))


class TrainingCheckpoint:
    """Save and restore everything a training loop needs to resume bit-for-bit.

    ``ckpt = TrainingCheckpoint(run_dir / "checkpoints" / "ssn-seed0")``;
    ``ckpt.save(model, optimizer, scheduler, loop={"epoch": 3})``;
    ``loop = ckpt.restore(model, optimizer, scheduler)`` returns the saved loop state or ``None``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.with_suffix(".json").exists() and self.path.with_suffix(".safetensors").exists()

    def save(
        self, model: torch.nn.Module, optimizer=None, scheduler=None, loop: Mapping | None = None
    ) -> None:
        rng_tensors, rng_plain = get_rng_state()
        save_state(
            self.path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": {"tensors": rng_tensors, "plain": rng_plain},
                "loop": dict(loop or {}),
            },
        )

    def restore(self, model: torch.nn.Module, optimizer=None, scheduler=None) -> dict | None:
        if not self.exists():
            return None
        state = load_state(self.path)
        model.load_state_dict(state["model"])
        if optimizer is not None and state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"]["tensors"], state["rng"]["plain"])
        return state["loop"]


def save_model(path: str | Path, model: torch.nn.Module, metadata: Mapping[str, Any]) -> None:
    """Weights as ``path.safetensors`` and JSON metadata (config, class, metrics) as ``path.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path.with_suffix(".safetensors")), metadata={"format": "pt"})
    _atomic_write_text(path.with_suffix(".json"), json.dumps(dict(metadata), indent=2, default=str))


def load_model_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata written by :func:`save_model`."""
    path = Path(path)
    st, js = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for p in (st, js):
        if not p.exists():
            raise FileNotFoundError(f"model file missing: {p}")
    return load_file(str(st)), json.loads(js.read_text())
