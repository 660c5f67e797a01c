"""The exported classifiers the speed benchmarks measure, each from the latest finished quick run that holds
its model (``runs/<experiment>/<id>/models/``), else untrained (said in the record).

- kws-ssn: BC-ResNet-1 with SSN folded, log-mel front end in the graph, 1 s at 16 kHz -> 12 logits;
- asc-factorized: the LMF CNN with SSN folded, DCASE front end in the graph, ``clip_seconds`` -> scene logits;
- sv-kan: the SE-ResNet embedder with its front end, 2 s -> L2-normalised embedding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from devicelab.audio.features import LogMel
from devicelab.core.config import load_config_yaml, resolve_config
from devicelab.core.paths import runs_root


@dataclass
class Case:
    key: str
    title: str
    model: nn.Module  # waveform (N, samples) -> output, eval mode, front end inside
    frontend: LogMel
    classifier: nn.Module  # what follows the front end
    samples: int
    weights: str  # the model file, or "untrained"
    run_dir: Path | None
    export_fn: Callable[[nn.Module, Path], Path]  # (model, path) -> path

    def export(self, path: Path, model: nn.Module | None = None) -> Path:
        """Write ``model`` (default :attr:`model`) as this case's ONNX graph."""
        return self.export_fn(self.model if model is None else model, path)

    def features_shape(self) -> tuple[int, ...]:
        return (1, 1, self.frontend.n_mels, self.frontend.num_frames(self.samples))

    def macs(self) -> dict[str, int]:
        """conv + matmul MACs per clip of the exported graph: classifier (FlopCounterMode) + front end
        (the two-stage DFT and the mel product, counted analytically)."""
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            self.classifier(torch.zeros(self.features_shape()))
        frames = self.frontend.num_frames(self.samples)
        f = self.frontend._factored.f
        front = frames * (f.macs_per_frame + self.frontend.n_mels * f.blocks * f.n2)
        return {"classifier": counter.get_total_flops() // 2, "front_end": front}


def latest_run(experiment: str, model_file: str) -> Path | None:
    runs = sorted((runs_root() / experiment).glob(f"*/models/{model_file}.safetensors"))
    return runs[-1].parent.parent if runs else None


def kws_case() -> Case:
    from devicelab.methods.kws_ssn.config import KwsSsnConfig
    from devicelab.methods.kws_ssn.export import deployable, export_waveform_model, load_trained
    from devicelab.methods.kws_ssn.recipe import build_bcresnet

    run = latest_run("kws-ssn", "ssn-seed0")
    if run is not None:
        classifier = load_trained(run, "ssn-seed0")
    else:
        classifier = build_bcresnet(resolve_config(KwsSsnConfig, "quick"), "ssn").eval()
    model = deployable(classifier)
    return Case(
        "kws",
        "kws-ssn BC-ResNet-1 (SSN folded), 1 s",
        model,
        model.frontend,
        model.classifier,
        16000,
        f"{run}/models/ssn-seed0" if run else "untrained",
        run,
        export_waveform_model,
    )


def asc_case() -> Case:
    from devicelab.core.onnx import export_onnx
    from devicelab.methods.asc_factorized.config import AscFactorizedConfig
    from devicelab.methods.asc_factorized.export import deployable
    from devicelab.methods.asc_factorized.report import load_classifier

    run = latest_run("asc-factorized", "lmf-official-seed0")
    if run is None:
        raise FileNotFoundError("no finished asc-factorized run with lmf-official-seed0")
    config = load_config_yaml(AscFactorizedConfig, run / "config.yaml")
    model = deployable(load_classifier(run, config, "lmf-official-seed0"), config)
    samples = int(round(config.clip_seconds * config.sample_rate_hz))
    return Case(
        "asc",
        f"asc-factorized LMF CNN (SSN folded), {config.clip_seconds:g} s",
        model,
        model.frontend,
        model.classifier,
        samples,
        f"{run}/models/lmf-official-seed0",
        run,
        lambda m, path: export_onnx(m, path, 0.05 * torch.randn(2, samples), input_name="waveform"),
    )


def sv_case() -> Case:
    from devicelab.methods.sv_kan.export import EXPORT_SECONDS, SpeakerEmbedder, export_embedder, load_trained

    run = latest_run("sv-kan", "kan-seed0")
    if run is None:
        raise FileNotFoundError("no finished sv-kan run with kan-seed0")
    model = SpeakerEmbedder(load_trained(run, "kan-seed0")).eval()
    return Case(
        "sv",
        f"sv-kan SE-ResNet embedder (KAN head), {EXPORT_SECONDS:g} s",
        model,
        model.frontend,
        _Normalised(model.network),
        int(EXPORT_SECONDS * 16000),
        f"{run}/models/kan-seed0",
        run,
        export_embedder,
    )


class _Normalised(nn.Module):
    """The embedder after its front end: per-band mean removal, then the network (as SpeakerEmbedder)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.network(mel - mel.mean(-1, keepdim=True))


CASES: dict[str, Callable[[], Case]] = {"kws": kws_case, "asc": asc_case, "sv": sv_case}


def load_cases(keys: list[str]) -> tuple[list[Case], list[str]]:
    """The cases that load, and a note for each that does not."""
    cases, missing = [], []
    for key in keys:
        try:
            cases.append(CASES[key]())
        except FileNotFoundError as e:
            missing.append(f"{key}: {e}")
    return cases, missing
