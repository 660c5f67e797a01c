"""ONNX export with the dynamo exporter (dynamic batch, written atomically) and a parity check against
ONNX Runtime."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn


class ExportError(ValueError):
    """A model that cannot be exported faithfully (e.g. non-finite weights); the message names the tensor."""


def check_finite(model: nn.Module) -> None:
    """Raise :class:`ExportError` naming the first parameter or buffer holding NaN or infinity."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ExportError(f"cannot export: {name} holds {bad} non-finite value(s) (NaN or infinity)")


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    *,
    input_name: str = "input",
    output_name: str = "logits",
    max_batch: int | None = None,
) -> Path:
    """Export ``model`` (eval mode) for inputs shaped like ``example`` with a dynamic first (batch) axis;
    the file appears only when complete. Refuses models with non-finite weights."""
    check_finite(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.onnx")
    batch = torch.export.Dim("batch", min=1, max=max_batch) if max_batch else torch.export.Dim("batch")
    try:
        torch.onnx.export(
            model.eval(),
            (example,),
            str(tmp),
            dynamo=True,
            external_data=False,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_parity(model: nn.Module, path: str | Path, inputs: torch.Tensor) -> float:
    """Max abs difference between ONNX Runtime's and PyTorch's outputs on ``inputs``; ``inf`` when either
    side gives NaN or infinity (a mismatch, never a pass)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_out = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    with torch.no_grad():
        torch_out = model.eval()(inputs).numpy()
    if ort_out.shape != torch_out.shape or not (np.isfinite(ort_out).all() and np.isfinite(torch_out).all()):
        return math.inf
    return float(np.abs(ort_out.astype(np.float64) - torch_out.astype(np.float64)).max(initial=0.0))


def check_parity(
    model: nn.Module, path: Path, inputs: torch.Tensor, tolerance: float, remove_on_failure: bool = True
) -> float:
    """:func:`onnx_parity` within ``tolerance``, else remove the file and raise naming it and the gap."""
    diff = onnx_parity(model, path, inputs)
    if not diff <= tolerance:
        if remove_on_failure:
            Path(path).unlink(missing_ok=True)
        raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.2e} > {tolerance}")
    return diff


def front_end_nodes(model) -> list[str]:
    """Names of the nodes up to and including the first ``Log`` (the log-mel front end), which stay float32
    when the rest is quantized; empty when the graph has no ``Log``."""
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    logs = [n for n in nodes if n.op_type == "Log"]
    if not logs:
        return []
    keep, stack = set(), [logs[0]]
    while stack:
        node = stack.pop()
        if node.name in keep:
            continue
        keep.add(node.name)
        stack.extend(producer[i] for i in node.input if i in producer)
    return [n.name for n in nodes if n.name in keep]


def fold_constants(src: str | Path, dst: str | Path) -> Path:
    """ONNX Runtime's basic graph optimisations (constant folding, redundant nodes) saved as a model."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return Path(dst)


def quantize_int8(
    src: str | Path, dst: str | Path, calibration: Iterable[Mapping[str, np.ndarray]] | None = None
) -> Path:
    """int8 copy of an exported model, the log-mel front end kept in float32 (:func:`front_end_nodes`).

    With ``calibration`` (input feeds, e.g. clips of the training split): static QDQ quantization, weights
    int8 per channel, activations uint8 from min/max ranges over those feeds. Without: dynamic
    quantization (int8 weights, activations quantized at run time). Written atomically."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.stem}.tmp-{os.getpid()}.onnx")
    folded = dst.with_name(f".{dst.stem}.folded-{os.getpid()}.onnx")
    try:
        fold_constants(src, folded)  # computed conv weights become initializers
        src = folded
        exclude = front_end_nodes(onnx.load(str(src)))
        if calibration is None:
            quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
        else:
            feeds = iter(list(calibration))

            class Reader(CalibrationDataReader):
                def get_next(self):
                    return next(feeds, None)

            quantize_static(
                src,
                tmp,
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
            )
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        folded.unlink(missing_ok=True)
    return dst


def int8_path(path: str | Path) -> Path:
    """Where ``--int8`` writes the quantized copy of ``path``: ``model.onnx`` -> ``model.int8.onnx``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.int8{path.suffix or '.onnx'}")


def export_int8(experiment: str, run_dir: str | Path, path: str | Path, count: int = 64) -> tuple[Path, str]:
    """``devicelab export NAME RUN --onnx PATH --int8``: write ``int8_path(PATH)``. Static when the method's
    export module (``devicelab.methods.<name>.export``) has ``calibration_clips(run_dir, count)`` (clips of
    the training split), else dynamic. Returns the path and which of the two was done."""
    import importlib

    import onnx

    from devicelab.core.config import ConfigError

    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"--int8 quantizes an ONNX model; {experiment} exported {path}")
    try:
        module = importlib.import_module(f"devicelab.methods.{experiment.replace('-', '_')}.export")
    except ModuleNotFoundError:
        module = None
    clips_of = getattr(module, "calibration_clips", None)
    if clips_of is None:
        return quantize_int8(path, int8_path(path)), "dynamic"
    name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    feeds = [{name: clip[None].numpy()} for clip in clips_of(run_dir, count)]
    return quantize_int8(path, int8_path(path), feeds), f"static, calibrated on {len(feeds)} training clips"


__all__ = [
    "ExportError",
    "check_finite",
    "check_parity",
    "export_int8",
    "export_onnx",
    "front_end_nodes",
    "int8_path",
    "onnx_parity",
    "quantize_int8",
]
