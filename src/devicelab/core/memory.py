"""Memory accounting as ``specs/measuring.md`` prescribes: exact counts first, measured peaks beside them.

- :func:`parameter_bytes`, :func:`gradient_bytes`, :func:`optimizer_state_bytes`: resident weights (unique
  storages, ``meta`` tensors excluded), gradients and optimizer state — exact and deterministic.
- :func:`saved_activation_bytes`: the bytes autograd keeps between forward and backward, once per storage,
  parameters and buffers excluded (``torch.autograd.graph.saved_tensors_hooks``).
- :class:`LiveTensorTracker`: a ``TorchDispatchMode`` that adds every new output storage and drops it through
  ``weakref.finalize``; its peak over one ``no_grad`` forward is the transient of inference.
- :func:`profiled_peak_bytes`: the CPU allocator's own peak over ``fn`` from ``torch.profiler``'s memory
  records (every allocation and free of the c10 CPU allocator, summed in time order); on a GPU use
  ``torch.cuda.max_memory_allocated`` instead.
- :func:`measure_peak_rss`: peak RSS of a fresh ``python -m`` subprocess (real, noisy, coarse); pair it with
  a baseline subprocess of the same imports and data.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _unique_bytes(tensors: Iterable[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        if t.device.type == "meta":
            continue
        s = t.untyped_storage()
        seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
    return sum(seen.values())


@dataclass(frozen=True)
class ParameterBytes:
    """Resident parameter bytes split into frozen and trainable, buffers apart; ``meta`` holds nothing."""

    frozen: int
    trainable: int
    buffers: int
    meta_parameters: int  # parameter elements on ``meta`` (hollowed: no storage)

    @property
    def total(self) -> int:
        return self.frozen + self.trainable + self.buffers


def parameter_bytes(model: nn.Module) -> ParameterBytes:
    """Σ numel × element_size over unique storages (tied weights once), ``meta`` tensors excluded."""
    params = list(model.parameters())
    return ParameterBytes(
        frozen=_unique_bytes(p for p in params if not p.requires_grad),
        trainable=_unique_bytes(p for p in params if p.requires_grad),
        buffers=_unique_bytes(model.buffers()),
        meta_parameters=sum(p.numel() for p in params if p.device.type == "meta"),
    )


def gradient_bytes(model: nn.Module) -> int:
    """Bytes of the gradients a step allocates: one per trainable parameter, same dtype."""
    return sum(tensor_bytes(p) for p in model.parameters() if p.requires_grad and p.device.type != "meta")


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Σ over the tensors in ``optimizer.state`` (Adam: two moments per tensor plus step counters)."""
    return sum(
        tensor_bytes(v)
        for state in optimizer.state.values()
        for v in state.values()
        if isinstance(v, torch.Tensor)
    )


def saved_activation_bytes(model: nn.Module, step: Callable[[], torch.Tensor]) -> tuple[int, torch.Tensor]:
    """Bytes saved for backward while ``step()`` runs the forward (measuring.md); returns (bytes, loss)."""
    excluded = {
        t.untyped_storage().data_ptr()
        for t in (*model.parameters(), *model.buffers())
        if t.device.type != "meta"
    }
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            s = t.untyped_storage()
            key, n = s.data_ptr(), s.nbytes()
        except (RuntimeError, NotImplementedError):  # opaque tensors: count by size
            key, n = id(t), t.numel() * t.element_size()
        if key not in excluded:
            seen[key] = max(seen.get(key, 0), n)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    return sum(seen.values()), loss


class LiveTensorTracker(TorchDispatchMode):
    """Bytes of live tensor storages created inside the mode: ``current`` and ``peak``.

    Each new output storage is added once; every tensor that refers to it holds a count, dropped by
    ``weakref.finalize`` when the tensor dies, and the storage's bytes leave ``current`` with the last one.
    Outputs that alias an input created outside the mode (views of weights or of the caller's inputs) are
    not counted. In-place results are the input tensor itself and add nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: dict[int, list[int]] = {}  # storage ptr -> [nbytes, live tensor count]
        self._tensors: set[int] = set()

    def _release(self, ptr: int, tid: int) -> None:
        self._tensors.discard(tid)
        entry = self._live.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self._live[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs, _ = tree_flatten((args, kwargs or {}))
        outside = {
            t.untyped_storage().data_ptr()
            for t in inputs
            if isinstance(t, torch.Tensor)
            and t.device.type != "meta"
            and t.untyped_storage().data_ptr() not in self._live
        }
        outputs, _ = tree_flatten(out)
        for t in outputs:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta" or id(t) in self._tensors:
                continue
            s = t.untyped_storage()
            ptr = s.data_ptr()
            if ptr == 0 or ptr in outside:
                continue
            entry = self._live.get(ptr)
            if entry is None:
                self._live[ptr] = [s.nbytes(), 1]
                self.current += s.nbytes()
                self.peak = max(self.peak, self.current)
            else:
                entry[1] += 1
            self._tensors.add(id(t))
            weakref.finalize(t, self._release, ptr, id(t))
        return out


def peak_live_bytes(fn: Callable[[], Any]) -> tuple[int, int, Any]:
    """(peak, still-live) bytes of tensors created while ``fn()`` runs, and its result."""
    tracker = LiveTensorTracker()
    with tracker:
        result = fn()
    return tracker.peak, tracker.current, result


def profiled_peak_bytes(fn: Callable[[], Any]) -> tuple[int, int, Any]:
    """(peak, net) bytes the CPU allocator held above its level at the start while ``fn()`` ran, and its
    result, from ``torch.profiler`` with ``profile_memory``: each op's own allocations count at its start,
    each free (a ``[memory]`` record) at its time. Same return shape as :func:`peak_live_bytes`."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    changes = sorted(
        (e.time_range.start, e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage)
        for e in prof.events()
    )
    current = peak = 0
    for _, delta in changes:
        current += delta
        peak = max(peak, current)
    return peak, current, result


@dataclass(frozen=True)
class TrainingAccount:
    """Accounted bytes of one training step (spec hollowed-net §6): W + G + O + A_saved + I."""

    weights: int
    gradients: int
    optimizer: int
    saved_activations: int
    inputs: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.saved_activations + self.inputs

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class InferenceAccount:
    """Accounted bytes of one ``no_grad`` forward: all weights + the peak of live activations."""

    weights: int
    peak_activations: int

    @property
    def total(self) -> int:
        return self.weights + self.peak_activations

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def account_training_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], torch.Tensor],
    inputs: Iterable[torch.Tensor],
) -> TrainingAccount:
    """Run one step of ``loss_fn`` under the saved-tensor hook, backward, optimizer step; account its bytes.

    Call it for the 2nd step so the optimizer state exists (spec §6).
    """
    saved, loss = saved_activation_bytes(model, loss_fn)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    p = parameter_bytes(model)
    return TrainingAccount(
        weights=p.total,
        gradients=gradient_bytes(model),
        optimizer=optimizer_state_bytes(optimizer),
        saved_activations=saved,
        inputs=_unique_bytes(inputs),
    )


def account_inference(model: nn.Module, forward: Callable[[], Any]) -> InferenceAccount:
    with torch.no_grad():
        peak, _, _ = peak_live_bytes(forward)
    return InferenceAccount(weights=parameter_bytes(model).total, peak_activations=peak)


# --------------------------------------------------------------------------------------------------------
# peak RSS of a subprocess


def current_peak_rss_bytes() -> int:
    """Peak RSS of this process in bytes: ``VmHWM`` (honours :func:`reset_peak_rss`), else ``ru_maxrss``."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def reset_peak_rss() -> bool:
    """Reset the peak-RSS mark (Linux ``/proc/self/clear_refs`` = 5), so transient import peaks do not mask
    the workload's own peak; returns False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def print_peak_rss(extra: Mapping[str, Any] | None = None) -> None:
    """The last stdout line of an RSS probe: ``{"peak_rss_bytes": ..., ...}``."""
    print(json.dumps({"peak_rss_bytes": current_peak_rss_bytes(), **dict(extra or {})}), flush=True)


def measure_peak_rss(
    module: str, args: list[str], env: Mapping[str, str] | None = None, timeout_s: float = 600
) -> dict[str, Any]:
    """Run ``python -m module *args`` (or ``python script.py *args``) in a fresh process; return the JSON of
    its last ``{...}`` stdout line (:func:`print_peak_rss` writes it)."""
    target = [module] if module.endswith(".py") else ["-m", module]
    proc = subprocess.run(
        [sys.executable, *target, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **dict(env or {})},
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"RSS probe {module} {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"RSS probe {module} printed no JSON line")
    return json.loads(lines[-1])
