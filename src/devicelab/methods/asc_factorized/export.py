"""ONNX export of a trained scene classifier: waveform in, logits out, front end and standardisation inside.

``devicelab export asc-factorized RUN_DIR --onnx out.onnx`` calls :func:`export_run`. SubSpectralNorms of
"-ssn" variants are folded to ``x * A + B`` (:func:`devicelab.nn.ssn.fold_subspectral_norms`); a ``rank1``
factorised conv exports as one Conv with its kernel built from the two 1D factors.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicelab.core.config import ConfigError, load_config_yaml
from devicelab.core.onnx import check_parity, export_onnx
from devicelab.methods.asc_factorized.config import AscFactorizedConfig
from devicelab.methods.asc_factorized.data import SceneLogMel
from devicelab.methods.asc_factorized.model import SceneClassifier
from devicelab.methods.asc_factorized.report import load_classifier
from devicelab.nn.ssn import fold_subspectral_norms

PARITY_TOLERANCE = 1e-4


class WaveformSceneClassifier(nn.Module):
    """Waveform (N, samples) -> logits (N, scenes): :class:`SceneLogMel` then a :class:`SceneClassifier`."""

    def __init__(self, classifier: SceneClassifier, frontend: SceneLogMel):
        super().__init__()
        self.frontend = frontend
        self.classifier = classifier

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.frontend(waveform).unsqueeze(1))


def deployable(classifier: SceneClassifier, config: AscFactorizedConfig) -> WaveformSceneClassifier:
    """The eval-mode waveform model of a trained classifier, SubSpectralNorms folded."""
    frontend = SceneLogMel(config.sample_rate_hz, config.n_mels, config.window_ms, config.hop_ms)
    samples = int(round(config.clip_seconds * config.sample_rate_hz))
    example = frontend(torch.zeros(1, samples)).unsqueeze(1)
    folded = fold_subspectral_norms(classifier.eval(), example)
    return WaveformSceneClassifier(folded, frontend).eval()


def export_run(run_dir: str | Path, options: Mapping[str, Any]) -> Path:
    """Write ``options["onnx"]`` from a finished run's model and check ONNX Runtime against PyTorch on a few
    clips (max abs diff <= 1e-4; a failing file is removed). The model is ``options["model"]`` (e.g.
    ``lmf-official-seed0``), else ``<variant>-official-seed<seed>`` from ``options["variant"]`` (default
    ``lmf``) and ``options["seed"]`` (default the run's base seed)."""
    run_dir = Path(run_dir)
    if "onnx" not in options:
        raise ConfigError("export needs options['onnx'], the output path")
    config = load_config_yaml(AscFactorizedConfig, run_dir / "config.yaml")
    seed = config.seed if options.get("seed") is None else int(options["seed"])
    name = options.get("model") or f"{options.get('variant') or 'lmf'}-{config.splits[0]}-seed{seed}"
    path = run_dir / "models" / f"{name}.safetensors"
    if not path.exists():
        available = sorted(
            p.stem for p in (run_dir / "models").glob("*.safetensors") if not p.stem.endswith("-best")
        )
        raise FileNotFoundError(
            f"{path}: no such trained model; available: "
            f"{', '.join(available) or 'none (is the run finished?)'}"
        )
    options.get("echo", print)(f"exporting {path}")
    model = deployable(load_classifier(run_dir, config, name), config)
    samples = int(round(config.clip_seconds * config.sample_rate_hz))
    example = 0.05 * torch.randn(2, samples, generator=torch.Generator().manual_seed(0))
    out = export_onnx(model, options["onnx"], example, input_name="waveform", output_name="logits")
    clips = 0.05 * torch.randn(3, samples, generator=torch.Generator().manual_seed(1))
    check_parity(model, out, clips, PARITY_TOLERANCE)
    return out


def calibration_clips(run_dir: str | Path, count: int = 64) -> torch.Tensor:
    """``count`` clips of the run's first split's training part, drawn with seed 0, at the model's rate and
    length: the calibration set of ``devicelab export asc-factorized RUN --int8``."""
    import json

    import numpy as np

    from devicelab.audio.io import read_wav
    from devicelab.data.corpora import ensure_corpus
    from devicelab.data.datasets.tau2019 import TAU2019

    run_dir = Path(run_dir)
    config = load_config_yaml(AscFactorizedConfig, run_dir / "config.yaml")
    info = json.loads((run_dir / "run.json").read_text())
    root = info.get("data_path") or ensure_corpus(config.corpus, info["profile"])
    train = TAU2019(root).split(config.splits[0], config.unseen_cities).train
    samples = int(round(config.clip_seconds * config.sample_rate_hz))
    waves = torch.zeros(min(count, len(train)), samples)
    for row, i in enumerate(np.random.default_rng(0).permutation(len(train))[: len(waves)]):
        audio, _ = read_wav(train[i].path, config.sample_rate_hz)
        waves[row, : min(len(audio), samples)] = torch.from_numpy(audio[:samples])
    return waves
