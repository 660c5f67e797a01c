"""Checkpoints: safetensors for every tensor, JSON for everything else; never pickle.

A training checkpoint holds the model weights, the optimizer and scheduler state, the global random states and
any extra state of the loop (epoch, best metric, ...) in **one** ``.safetensors`` file: the tensors, and the
rest as JSON in the file's metadata. It is written to a temporary name and renamed, so a run killed at any
moment leaves either the previous checkpoint or the new one, never half of one and never a mismatched pair.
The checkpoint it replaces is kept as ``NAME.prev.safetensors``. Reading checks the file and raises
:class:`CheckpointError` naming it and the way out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from devicelab.core.seeding import get_rng_state, set_rng_state

_TENSOR = "__tensor__"
_STATE_KEY = "devicelab.state"  # safetensors metadata entry holding the JSON part of a state
_META_KEY = "devicelab.metadata"  # ... and the JSON metadata of a saved model


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be read back; the message names the file and the way out."""


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


def _unshare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storages; clone the few tensors that alias each other."""
    seen: set[int] = set()
    for k, t in tensors.items():
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            tensors[k] = t.clone()
        seen.add(ptr)
    return tensors


def _atomic_save_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write one safetensors file under a temporary name, flush it to disk, then rename it into place."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    try:
        save_file(_unshare(tensors), str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a truncated file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file missing: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open has no iterator
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged or truncated safetensors file ({e})") from None
    return tensors, metadata


def save_state(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Save a nested state with tensors as one file, ``path.safetensors`` (the rest as JSON metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    plain = flatten_state(dict(state), "", tensors)
    st = path.with_suffix(".safetensors")
    _atomic_save_file(st, tensors, {"format": "pt", _STATE_KEY: json.dumps(plain)})
    return st


def load_state(path: str | Path) -> dict[str, Any]:
    """Load what :func:`save_state` wrote, checking it; errors name the file.

    Raises FileNotFoundError when ``path.safetensors`` is missing and :class:`CheckpointError` when it is
    damaged. ``path`` may name the file itself. Reads the older layout (``path.safetensors`` + ``path.json``).
    """
    path = Path(path)
    st = path if path.suffix == ".safetensors" else path.with_suffix(".safetensors")
    js = st.with_suffix(".json")
    tensors, metadata = read_safetensors(st)
    if _STATE_KEY in metadata:
        text, where = metadata[_STATE_KEY], st
    elif js.is_file():  # older layout: the JSON part in a second file
        text, where = js.read_text(), js
    else:
        raise CheckpointError(f"{st}: not a devicelab checkpoint (no {_STATE_KEY} metadata)")
    try:
        plain = json.loads(text)
        return unflatten_state(plain, tensors)
    except (json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{where}: not a valid checkpoint index ({type(e).__name__}: {e})") from None


class TrainingCheckpoint:
    """Save and restore everything a training loop needs to resume bit-for-bit.

    ``ckpt = TrainingCheckpoint(run_dir / "checkpoints" / "ssn-seed0")``;
    ``ckpt.save(model, optimizer, scheduler, loop={"epoch": 3})``;
    ``loop = ckpt.restore(model, optimizer, scheduler)`` returns the saved loop state or ``None``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def file(self) -> Path:
        """The checkpoint file, ``NAME.safetensors``."""
        return self.path.with_suffix(".safetensors")

    @property
    def previous_file(self) -> Path:
        """The checkpoint it replaced, ``NAME.prev.safetensors`` (the epoch before)."""
        return self.path.with_name(self.path.name + ".prev.safetensors")

    def exists(self) -> bool:
        return self.file.exists() or self.previous_file.exists()

    def loop_state(self) -> dict | None:
        """The saved loop state (epoch, history, ...) without restoring anything; ``None`` if none."""
        if not self.exists():
            return None
        return load_state(self._readable())["loop"]

    def _readable(self) -> Path:
        # a kill between the two renames of save() leaves only the previous file
        return self.file if self.file.exists() else self.previous_file

    def save(
        self, model: torch.nn.Module, optimizer=None, scheduler=None, loop: Mapping | None = None
    ) -> None:
        rng_tensors, rng_plain = get_rng_state()
        if self.file.exists():
            os.replace(self.file, self.previous_file)
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
        path = self._readable()
        try:
            state = load_state(path)
        except CheckpointError as e:
            raise CheckpointError(
                f"{e}; way out: delete {path} and resume again to continue from "
                f"the previous checkpoint ({self.previous_file.name}) or the start of this sub-run, or start "
                "a new run without --resume"
            ) from None
        model.load_state_dict(state["model"])
        if optimizer is not None and state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"]["tensors"], state["rng"]["plain"])
        return state["loop"]


def save_model(path: str | Path, model: torch.nn.Module, metadata: Mapping[str, Any]) -> None:
    """Weights and JSON metadata (config, class, metrics) in one file, ``path.safetensors``.

    A readable copy of the metadata is written to ``path.json`` afterwards (it marks the model as saved).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    text = json.dumps(dict(metadata), indent=2, default=str)
    _atomic_save_file(path.with_suffix(".safetensors"), state, {"format": "pt", _META_KEY: text})
    _atomic_write_text(path.with_suffix(".json"), text)


def load_model_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata written by :func:`save_model`; a damaged file raises :class:`CheckpointError`."""
    path = Path(path)
    st, js = path.with_suffix(".safetensors"), path.with_suffix(".json")
    weights, metadata = read_safetensors(st)
    if _META_KEY in metadata:
        return weights, json.loads(metadata[_META_KEY])
    if not js.exists():
        raise FileNotFoundError(f"model file missing: {js}")
    return weights, json.loads(js.read_text())
