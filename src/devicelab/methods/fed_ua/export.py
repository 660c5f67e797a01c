"""The deployable FedUA model (g_θ and the output layer W: log-mel features -> o(x) ∈ R^c) as ONNX, and the
run-folder hook behind ``devicelab export fed-ua RUN_DIR --onnx out.onnx``.

The codeword and threshold are not part of the model: a device keeps them and accepts x when
v_uᵀ o(x) / c ≥ τ_u.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from devicelab.core.onnx import check_parity, export_onnx
from devicelab.methods.fed_ua.model import CodewordModel, ModelConfig

PARITY_TOLERANCE = 1e-4  # max abs difference of o(x), ONNX Runtime vs PyTorch


def save_model_arrays(folder: Path, name: str, arrays: Mapping[str, np.ndarray], cfg: ModelConfig) -> Path:
    """Keep a trained model of a run (safetensors + its ModelConfig as JSON, JSON last)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.array(v, order="C", copy=True) for k, v in arrays.items()}, str(folder / f"{name}.safetensors")
    )
    (folder / f"{name}.json").write_text(json.dumps(cfg.__dict__, indent=2))
    return folder / f"{name}.safetensors"


def export_fedua_onnx(model: CodewordModel, path: Path, n_mels: int, frames: int = 151) -> Path:
    """Write ``model`` to ``path`` (dynamic batch) and check ONNX Runtime against PyTorch."""
    example = torch.randn(2, n_mels, frames)
    out = export_onnx(model.eval(), path, example, input_name="logmel", output_name="codeword_outputs")
    check_parity(model, out, torch.randn(3, n_mels, frames), PARITY_TOLERANCE)
    return out


def export_run(run_dir: Path, options: Mapping[str, Any]) -> Path:
    """``Experiment.export``: the run's FedUA model (of one seed if given) to ``options["onnx"]``."""
    from safetensors.numpy import load_file

    from devicelab.federated import load_arrays

    run_dir = Path(run_dir)
    if not options.get("onnx"):
        raise ValueError("fed-ua export: give --onnx OUT.onnx")
    seed = options.get("seed")
    pattern = "fedua-seed*.safetensors" if seed is None else f"fedua-seed{seed}.safetensors"
    found = sorted((run_dir / "models").glob(pattern))
    if not found:
        raise FileNotFoundError(f"{run_dir / 'models'}: no {pattern} (is this a finished fed-ua run?)")
    cfg = ModelConfig(**json.loads(found[0].with_suffix(".json").read_text()))
    model = CodewordModel(cfg)
    load_arrays(model, load_file(str(found[0])))
    return export_fedua_onnx(model, Path(options["onnx"]), cfg.n_mels)
