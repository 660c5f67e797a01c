"""The cached one-time artefacts under ``$DEVICELAB_DATA``: the tiny-sd pipeline and the evaluators.

``ensure_evaluators(profile)`` and ``ensure_tiny_sd(profile)`` build on first use (with progress; an
interrupted tiny-sd build resumes from its checkpoints) and return the folder; a built folder has
``manifest.json``, written last. ``resolve_model`` and ``resolve_evaluators`` pick what a run uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devicelab.core.paths import data_root
from devicelab.methods.hollowed_net.data import read_captioned
from devicelab.methods.hollowed_net.evaluators import EvaluatorConfig, train_evaluators
from devicelab.methods.hollowed_net.pretrain import PretrainConfig, pretrain_tiny_sd

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.hollowed_net.config import HollowedNetConfig


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


def _random_tiny_model(config: HollowedNetConfig, ctx: RunContext, corpus: Path) -> Path:
    """The smoke base: a random-init tiny pipeline saved with save_pretrained into the run folder."""
    from devicelab.methods.hollowed_net.pipeline import TinySDConfig, build_tiny_pipeline
    from devicelab.methods.hollowed_net.pretrain import read_vocab_words

    out = ctx.run_dir / "model"
    if not (out / "model_index.json").is_file():
        captions = [r.text for r in read_captioned(corpus / "base" / "train")]
        sizes = TinySDConfig(
            vae_channels=tuple(config.tiny_vae_channels), unet_channels=tuple(config.tiny_unet_channels)
        )
        pipe = build_tiny_pipeline(
            read_vocab_words(corpus, captions), ctx.run_dir / "tokenizer-src", sizes, seed=config.seed
        )
        pipe.save_pretrained(str(out), safe_serialization=True)
    return out


def resolve_model(
    config: HollowedNetConfig, ctx: RunContext, corpus: Path | None, evaluators: Path | None
) -> Path:
    """The base pipeline folder: tiny-sd (built once), a random tiny pipeline (smoke) or ``base`` itself."""
    if config.base == "random-tiny":
        return _random_tiny_model(config, ctx, corpus)
    if config.base == "tiny-sd":
        if list(config.tiny_unet_channels) != [32, 64, 128, 128] or list(config.tiny_vae_channels) != [
            32,
            64,
            64,
        ]:
            raise ValueError(
                "tiny_unet_channels/tiny_vae_channels only apply to base=random-tiny; the cached "
                "tiny-sd has the spec's sizes"
            )
        return ensure_tiny_sd(corpus, ctx.profile, config.pretrain, evaluators, log=print)
    return Path(config.base)


def resolve_evaluators(config: HollowedNetConfig, ctx: RunContext, corpus: Path | None) -> Path | None:
    """The evaluator proxies for the corpus (built once; into the run folder on smoke); None without one."""
    if corpus is None:
        return None
    folder = ctx.run_dir / "evaluators" if ctx.profile == "smoke" else None
    return ensure_evaluators(corpus, ctx.profile, config.evaluators, log=print, folder=folder)
