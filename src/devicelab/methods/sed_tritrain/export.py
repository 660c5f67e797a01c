"""ONNX export of a trained sed-tritrain system: waveform (B, samples) in, frame posteriors (B, T', K) out,
with the log-mel front end and the standardiser inside the graph. Only F + Ft is deployed (spec §2.2).

``devicelab export sed-tritrain RUN_DIR --onnx out.onnx`` calls :func:`export_run`; thresholds, median
filter and event decoding (spec §2.5) stay outside the graph (``labels.detect``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from devicelab.core.checkpoint import load_model_weights
from devicelab.core.config import ConfigError, load_config_yaml
from devicelab.core.onnx import check_parity, export_onnx
from devicelab.data.datasets.desed import CLIP_SECONDS
from devicelab.methods.sed_tritrain.config import SedTritrainConfig
from devicelab.methods.sed_tritrain.data import SedFrontEnd, Standardize
from devicelab.methods.sed_tritrain.recipe import SedDetector, build_crnn

PARITY_TOLERANCE = 1e-4


def load_trained(run_dir: str | Path, model_name: str) -> SedDetector:
    """The deployed model ``model_name`` (e.g. ``tritrain-seed0``) of a finished run, with its front end,
    in eval mode."""
    run_dir = Path(run_dir)
    config = load_config_yaml(SedTritrainConfig, run_dir / "config.yaml")
    weights, meta = load_model_weights(run_dir / "models" / model_name)
    frontend = SedFrontEnd(config.frontend)
    n_mels = frontend.logmel.n_mels
    detector = SedDetector(
        Standardize(torch.zeros(n_mels), torch.ones(n_mels)),
        build_crnn(config, len(meta["classes"])),
        frontend,
    )
    detector.load_state_dict(weights)
    return detector.eval()


def example_waveforms(frontend: SedFrontEnd, batch: int = 2, seed: int = 0) -> torch.Tensor:
    samples = int(CLIP_SECONDS * frontend.sample_rate_hz)
    return 0.05 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


def export_run(run_dir: str | Path, options: Mapping[str, Any]) -> Path:
    """Write ``options["onnx"]`` from a finished run's model and check ONNX Runtime against PyTorch (max abs
    diff <= 1e-4). The model is ``options["model"]``, else ``<variant>-seed<seed>`` from
    ``options["variant"]``
    (default ``tritrain``) and ``options["seed"]`` (default the run's base seed)."""
    run_dir = Path(run_dir)
    if "onnx" not in options:
        raise ConfigError("export needs options['onnx'], the output path")
    config = load_config_yaml(SedTritrainConfig, run_dir / "config.yaml")
    variant = options.get("variant") or "tritrain"
    seed = config.seed if options.get("seed") is None else int(options["seed"])
    name = options.get("model") or f"{variant}-seed{seed}"
    if not (run_dir / "models" / f"{name}.safetensors").exists():
        available = sorted(p.stem for p in (run_dir / "models").glob("*-seed*.safetensors"))
        raise FileNotFoundError(
            f"{run_dir / 'models' / name}.safetensors: no such trained model; "
            f"available: {', '.join(available) or 'none (is the run finished?)'}"
        )
    options.get("echo", print)(f"exporting {run_dir / 'models' / name}.safetensors")
    model = load_trained(run_dir, name)
    path = export_onnx(model, options["onnx"], example_waveforms(model.frontend), input_name="waveform",
                       output_name="frame_posteriors")  # fmt: skip
    check_parity(model, path, example_waveforms(model.frontend, 3, seed=1), PARITY_TOLERANCE)
    return path
