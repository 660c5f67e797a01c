"""The cached one-time artefacts under ``$DEVICELAB_DATA``: the tiny-sd pipeline and the evaluators.

``ensure_evaluators(profile)`` and ``ensure_tiny_sd(profile)`` build on first use (with progress; an
interrupted tiny-sd build resumes from its checkpoints) and return the folder; a built folder has
``manifest.json``, written last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from devicelab.core.paths import data_root
from devicelab.methods.hollowed_net.evaluators import EvaluatorConfig, train_evaluators
from devicelab.methods.hollowed_net.pretrain import PretrainConfig, pretrain_tiny_sd


def artefact_dir(name: str, profile: str) -> Path:
    return data_root() / name / profile


def ensure_evaluators(
    corpus_dir: Path,
    profile: str,
    cfg: EvaluatorConfig,
    log: Callable[[str], None] = print,
    folder: Path | None = None,
) -> Path:
    out = folder or artefact_dir("glyph-world-evaluators", profile)
    if not (out / "manifest.json").is_file():
        log(f"training the glyph-world evaluators once into {out}")
        train_evaluators(corpus_dir / "base", out, cfg, log=log)
    return out


def ensure_tiny_sd(
    corpus_dir: Path,
    profile: str,
    cfg: PretrainConfig,
    evaluators_dir: Path | None,
    log: Callable[[str], None] = print,
    folder: Path | None = None,
) -> Path:
    out = folder or artefact_dir("tiny-sd", profile)
    if not (out / "manifest.json").is_file():
        log(f"pre-training tiny-sd once into {out} (resumable)")
        pretrain_tiny_sd(corpus_dir, out, cfg, evaluators_dir=evaluators_dir, log=log)
    return out
