"""Deployable speaker embedder, enrolment and scoring from audio files, and ONNX export (spec §2.5).

``SpeakerEmbedder`` puts the front end of spec §2.1 (log-mel, per-band mean removal) in front of a trained
:class:`~devicelab.methods.sv_kan.model.ResNetSE`: waveform (N, samples) -> embedding (N, D).
``SpeakerVerifier`` enrols speakers from files and scores test files with the cosine of spec §2.5.
``devicelab export sv-kan RUN_DIR --onnx out.onnx [--variant kan] [--seed 0]`` calls :func:`export_run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.audio.io import read_wav
from devicelab.core.checkpoint import load_model_weights
from devicelab.core.config import ConfigError, load_config_yaml
from devicelab.core.onnx import check_parity, export_onnx
from devicelab.methods.sv_kan.config import SvKanConfig
from devicelab.methods.sv_kan.data import SAMPLE_RATE_HZ, log_mel_frontend
from devicelab.methods.sv_kan.model import ResNetSE

PARITY_TOLERANCE = 1e-4
EXPORT_SECONDS = 2.0  # the ONNX graph takes fixed-length clips (the batch axis is dynamic)


class SpeakerEmbedder(nn.Module):
    """Waveform (N, samples) at 16 kHz -> L2-normalised speaker embedding (N, D)."""

    def __init__(self, network: ResNetSE):
        super().__init__()
        self.frontend = log_mel_frontend(network.n_mels)
        self.network = network.eval()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.frontend(waveform)  # (N, n_mels, T)
        return self.network((mel - mel.mean(-1, keepdim=True)).unsqueeze(1))


class SpeakerVerifier:
    """Enrol speakers from audio files and score test files against them (cosine, spec §2.5).

    The enrolment vector is the L2-normalised mean of the enrolment embeddings; a score above
    ``threshold`` accepts.
    """

    def __init__(self, embedder: SpeakerEmbedder, threshold: float = 0.5):
        self.embedder = embedder.eval()
        self.threshold = threshold
        self.speakers: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed_file(self, path: str | Path) -> torch.Tensor:
        audio, _ = read_wav(path, SAMPLE_RATE_HZ)  # AudioError names an unreadable file
        return self.embedder(torch.from_numpy(audio)[None])[0]

    def enrol(self, name: str, files: Iterable[str | Path]) -> torch.Tensor:
        files = list(files)
        if not files:
            raise ValueError(f"enrol {name!r}: no enrolment files")
        vector = F.normalize(torch.stack([self.embed_file(f) for f in files]).mean(0), dim=0)
        self.speakers[name] = vector
        return vector

    def score(self, name: str, path: str | Path) -> float:
        if name not in self.speakers:
            raise KeyError(
                f"speaker {name!r} is not enrolled (enrolled: {', '.join(self.speakers) or 'none'})"
            )
        return float(self.speakers[name] @ self.embed_file(path))

    def verify(self, name: str, path: str | Path) -> bool:
        return self.score(name, path) >= self.threshold


def load_trained(run_dir: str | Path, model_name: str) -> ResNetSE:
    """The trained SE network ``model_name`` (e.g. ``kan-seed0``) of a finished run, in eval mode."""
    run_dir = Path(run_dir)
    config = load_config_yaml(SvKanConfig, run_dir / "config.yaml")
    path = run_dir / "models" / model_name
    if not path.with_suffix(".safetensors").exists():
        available = sorted(p.stem for p in (run_dir / "models").glob("*.safetensors"))
        raise FileNotFoundError(
            f"{path}.safetensors: no such trained model; "
            f"available: {', '.join(available) or 'none (is the run finished?)'}"
        )
    weights, _ = load_model_weights(path)
    network = ResNetSE(config.n_mels, config.channels, config.blocks, config.embedding_dim)
    network.load_state_dict(weights)
    return network.eval()


def export_embedder(embedder: SpeakerEmbedder, path: str | Path, seconds: float = EXPORT_SECONDS) -> Path:
    """Export waveform (N, seconds * 16000) -> embedding (N, D) to ONNX (dynamic batch), atomically."""
    example = 0.1 * torch.randn(2, int(seconds * SAMPLE_RATE_HZ), generator=torch.Generator().manual_seed(0))
    return export_onnx(embedder, path, example, input_name="waveform", output_name="embedding")


def export_run(run_dir: str | Path, options: Mapping[str, Any]) -> Path:
    """Write ``options["onnx"]`` from a run's ``<variant>-seed<seed>`` model (default ``kan`` and the
    run's base seed) and check ONNX Runtime against PyTorch on a few clips (max abs diff <= 1e-4)."""
    run_dir = Path(run_dir)
    if "onnx" not in options:
        raise ConfigError("export needs options['onnx'], the output path")
    config = load_config_yaml(SvKanConfig, run_dir / "config.yaml")
    variant = options.get("variant") or "kan"
    seed = config.seed if options.get("seed") is None else int(options["seed"])
    embedder = SpeakerEmbedder(load_trained(run_dir, options.get("model") or f"{variant}-seed{seed}"))
    path = export_embedder(embedder, options["onnx"])
    clips = 0.1 * torch.randn(
        3, int(EXPORT_SECONDS * SAMPLE_RATE_HZ), generator=torch.Generator().manual_seed(1)
    )
    check_parity(embedder, path, clips, PARITY_TOLERANCE)
    return path
