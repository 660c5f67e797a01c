"""ONNX export of a trained kws-ssn model: waveform in, logits out, front end inside the graph, SSN folded.

``devicelab export kws-ssn RUN_DIR --onnx out.onnx`` calls :func:`export_run`. Every SubSpectralNorm is
replaced by its eval-mode form ``x * A + B`` (:func:`devicelab.nn.ssn.fold_subspectral_norms`), so the graph
holds no band reshape; the dynamo exporter keeps ``torch.stft`` in the graph (``stack.md``, problem 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicelab.audio.features import LogMel
from devicelab.core.checkpoint import load_model_weights
from devicelab.core.config import ConfigError, load_config_yaml
from devicelab.core.onnx import check_parity, export_onnx
from devicelab.data.datasets.speech_commands import CLIP_SAMPLES
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.recipe import build_bcresnet
from devicelab.nn.ssn import fold_subspectral_norms

PARITY_TOLERANCE = 1e-4


class KeywordSpotter(nn.Module):
    """Waveform (N, 16000) -> logits (N, 12): log-mel front end followed by a classifier on (N, 1, 40, T)."""

    def __init__(self, classifier: nn.Module, frontend: nn.Module | None = None):
        super().__init__()
        self.frontend = frontend if frontend is not None else LogMel()
        self.classifier = classifier

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.frontend(waveform).unsqueeze(1))


def deployable(classifier: nn.Module) -> KeywordSpotter:
    """An eval-mode :class:`KeywordSpotter` with every SubSpectralNorm folded (same function, no reshape)."""
    example = torch.zeros(1, 1, 40, LogMel().num_frames(CLIP_SAMPLES))
    return KeywordSpotter(fold_subspectral_norms(classifier.eval(), example)).eval()


def export_waveform_model(model: nn.Module, path: str | Path) -> Path:
    """Export a waveform (N, 16000) -> logits model to ONNX (dynamic batch), written atomically."""
    example = 0.1 * torch.randn(2, CLIP_SAMPLES)
    return export_onnx(model, path, example, input_name="waveform", output_name="logits")


def load_trained(run_dir: str | Path, model_name: str) -> nn.Module:
    """The trained BC-ResNet ``model_name`` (e.g. ``ssn-seed0``) of a finished run, in eval mode."""
    run_dir = Path(run_dir)
    config = load_config_yaml(KwsSsnConfig, run_dir / "config.yaml")
    weights, meta = load_model_weights(run_dir / "models" / model_name)
    if meta.get("family") != "bcresnet":
        raise ConfigError(
            f"{run_dir / 'models' / model_name}: export supports BC-ResNet models, not {meta.get('family')}"
        )
    model = build_bcresnet(config, meta["variant"])
    model.load_state_dict(weights)
    return model.eval()


def export_run(run_dir: str | Path, options: Mapping[str, Any]) -> Path:
    """Write ``options["onnx"]`` from a finished run's model and check ONNX Runtime against PyTorch on a few
    clips (max abs diff <= 1e-4). The model is ``options["model"]`` (e.g. ``bn-seed1``), else
    ``<variant>-seed<seed>`` from ``options["variant"]`` (default ``ssn``) and ``options["seed"]`` (default
    the run's base seed); ``options["echo"]`` (default print) says which model is exported."""
    run_dir = Path(run_dir)
    if "onnx" not in options:
        raise ConfigError("export needs options['onnx'], the output path")
    config = load_config_yaml(KwsSsnConfig, run_dir / "config.yaml")
    variant = options.get("variant") or "ssn"
    seed = config.seed if options.get("seed") is None else int(options["seed"])
    name = options.get("model") or f"{variant}-seed{seed}"
    if not (run_dir / "models" / f"{name}.safetensors").exists():
        available = sorted(p.stem for p in (run_dir / "models").glob("*.safetensors"))
        raise FileNotFoundError(
            f"{run_dir / 'models' / name}.safetensors: no such trained model; "
            f"available: {', '.join(available) or 'none (is the run finished?)'}"
        )
    options.get("echo", print)(f"exporting {run_dir / 'models' / name}.safetensors")
    model = deployable(load_trained(run_dir, name))
    path = export_waveform_model(model, options["onnx"])
    clips = 0.1 * torch.randn(4, CLIP_SAMPLES, generator=torch.Generator().manual_seed(0))
    check_parity(model, path, clips, PARITY_TOLERANCE)
    return path


def calibration_clips(run_dir: str | Path, count: int = 64) -> torch.Tensor:
    """``count`` clips (count, 16000) of the run's training split, drawn with seed 0: the calibration set of
    ``devicelab export kws-ssn RUN --int8``."""
    import json
    from types import SimpleNamespace

    from devicelab.core.sources import resolve_data
    from devicelab.data.corpora import ensure_corpus
    from devicelab.methods.kws_ssn.data import load_config_task

    run_dir = Path(run_dir)
    config = load_config_yaml(KwsSsnConfig, run_dir / "config.yaml")
    info = json.loads((run_dir / "run.json").read_text())
    ctx = SimpleNamespace(data_path=info.get("data_path"), corpus=lambda n: ensure_corpus(n, info["profile"]))
    data = resolve_data(ctx, config.corpus)
    task = load_config_task(config, data)
    pick = torch.randperm(len(task.train), generator=torch.Generator().manual_seed(0))[:count]
    return task.train.waves[pick]
