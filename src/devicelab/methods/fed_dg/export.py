"""Export of FedFD-A inference (the IFA mode: one forward pass per input) to ONNX, and the run-folder hook
behind ``devicelab export fed-dg RUN_DIR --onnx out.onnx``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from devicelab.core.onnx import export_onnx
from devicelab.methods.fed_dg.bn import set_default_mode


def export_ifa_onnx(model: nn.Module, path: Path, image_size: int = 32) -> Path:
    """Write ``model`` in IFA inference mode to ``path`` (dynamo exporter, dynamic batch up to 1024)."""
    model = model.eval()
    set_default_mode(model, "ifa")
    try:
        example = torch.randn(2, 3, image_size, image_size)
        return export_onnx(model, path, example, input_name="images", output_name="logits", max_batch=1024)
    finally:
        set_default_mode(model, "plain")


def save_fedfd_arrays(
    folder: Path, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> Path:
    """Keep a trained FedFD model of a run (safetensors + JSON, JSON last)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.array(v, order="C", copy=True) for k, v in arrays.items()}, str(folder / f"{name}.safetensors")
    )
    (folder / f"{name}.json").write_text(json.dumps(dict(meta), indent=2))
    return folder / f"{name}.safetensors"


def export_run(run_dir: Path, options: Mapping[str, Any]) -> Path:
    """``Experiment.export``: the run's first FedFD model (of ``options["seed"]`` when given), exported in IFA
    mode to ``options["onnx"]``; ``options["echo"]`` (default print) says which model is exported."""
    from safetensors.numpy import load_file

    from devicelab.core.config import load_config_yaml
    from devicelab.methods.fed_dg.algorithms import ModelConfig, build_model, load_arrays
    from devicelab.methods.fed_dg.config import FedDGConfig
    from devicelab.methods.fed_dg.recipe import model_config

    run_dir = Path(run_dir)
    if "onnx" not in options:
        raise ValueError("fed-dg export: give --onnx OUT.onnx")
    if options.get("variant") not in (None, "fedfd"):
        raise ValueError(f"fed-dg export: --variant {options['variant']}: only fedfd models are exported")
    pattern = (
        "fedfd-*.safetensors" if options.get("seed") is None else f"fedfd-*-seed{options['seed']}.safetensors"
    )
    found = sorted((run_dir / "models").glob(pattern))
    if not found:
        raise FileNotFoundError(f"{run_dir / 'models'}: no {pattern} (is this a finished fed-dg run?)")
    options.get("echo", print)(f"exporting {found[0]}")
    cfg = load_config_yaml(FedDGConfig, run_dir / "config.yaml")
    meta = json.loads(found[0].with_suffix(".json").read_text())
    mcfg = ModelConfig(**{**model_config(cfg).__dict__, "num_classes": int(meta["num_classes"])})
    model = build_model(mcfg)
    load_arrays(model, load_file(str(found[0])))
    return export_ifa_onnx(model, Path(options["onnx"]), cfg.image_size if cfg.corpus != "synthetic" else 16)
