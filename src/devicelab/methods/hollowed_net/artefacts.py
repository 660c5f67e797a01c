"""The cached one-time artefacts under ``$DEVICELAB_DATA``: the tiny-sd pipeline and the evaluators.

``ensure_evaluators`` and ``ensure_tiny_sd`` build on first use (with progress; an interrupted tiny-sd build
resumes from its checkpoints) and return the folder; a built folder has ``manifest.json``, written last,
with ``config_hash``: the hash of the config, the corpus content and (for tiny-sd) the evaluators that made
it. A folder built with another config is rebuilt, never reused. Loading re-checks the evaluators against
chance and tiny-sd's quality gate (spec §10.1); a failed gate stops the build and every later load when
``gate_action="fail"``. ``devicelab data build tiny-sd|glyph-world-evaluators --profile P`` builds them
(:func:`build_evaluators`, :func:`build_tiny_sd`); ``resolve_model`` and ``resolve_evaluators`` pick what a
run uses.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

__all__ = ["GateFailedError", "build_evaluators", "build_tiny_sd", "ensure_evaluators", "ensure_tiny_sd"]

from devicelab.core.config import config_hash
from devicelab.core.paths import data_root, portable_path
from devicelab.methods.hollowed_net.data import read_captioned
from devicelab.methods.hollowed_net.evaluators import EvaluatorConfig, train_evaluators
from devicelab.methods.hollowed_net.pretrain import GateFailedError, PretrainConfig, pretrain_tiny_sd

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.hollowed_net.config import HollowedNetConfig


def artefact_dir(name: str, profile: str) -> Path:
    return data_root() / name / profile


def read_artefact_manifest(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def corpus_content(corpus_dir: Path) -> str:
    """The corpus's content hash from its manifest (the folder path for a corpus without one)."""
    manifest = read_artefact_manifest(corpus_dir) or {}
    return manifest.get("content_sha256") or str(Path(corpus_dir).resolve())


def evaluators_key(corpus_dir: Path, cfg: EvaluatorConfig) -> str:
    return config_hash(
        {"artefact": "glyph-world-evaluators", "config": asdict(cfg)}, corpus_content(corpus_dir)
    )


def tiny_sd_key(corpus_dir: Path, cfg: PretrainConfig, evaluators_dir: Path | None) -> str:
    """gate_action decides what happens to a built model, not what is built: it is left out of the key."""
    model = {k: v for k, v in asdict(cfg).items() if k != "gate_action"}
    evaluators = (read_artefact_manifest(evaluators_dir) or {}).get("config_hash") if evaluators_dir else None
    return config_hash(
        {"artefact": "tiny-sd", "config": model, "evaluators": evaluators}, corpus_content(corpus_dir)
    )


def tiny_sd_vae_key(corpus_dir: Path, cfg: PretrainConfig) -> str:
    """What the VAE stage of a tiny-sd build depends on (its checkpoint survives a change of the U-Net's)."""
    vae = {k: v for k, v in asdict(cfg).items() if k.startswith("vae_") or k in ("max_images", "seed")}
    return config_hash({"artefact": "tiny-sd/vae", "config": vae}, corpus_content(corpus_dir))


def _reusable(folder: Path, what: str, want: str, log: Callable[[str], None]) -> bool:
    manifest = read_artefact_manifest(folder)
    if manifest is None:
        return False
    have = manifest.get("config_hash")
    if have == want:
        return True
    log(
        f"{what} in {portable_path(folder)} was built with config {have or '(unrecorded)'}; this config is "
        f"{want}: rebuilding"
    )
    return False


def check_evaluators(folder: Path, min_accuracy: float) -> dict[str, dict[str, float]]:
    """The stored validation of each evaluator (accuracy on real validation images vs chance); raises
    :class:`GateFailedError` if the shape or colour classifier reads below ``min_accuracy``, since the quality
    gate and prompt-attribute accuracy rest on them."""
    validation = (read_artefact_manifest(folder) or {}).get("validation") or {}
    for attribute in ("shape", "color"):
        entry = validation.get(f"attribute/{attribute}")
        if entry is None:
            raise GateFailedError(f"{portable_path(folder)}: no validation of the {attribute} classifier")
        if entry["accuracy"] < min_accuracy:
            raise GateFailedError(
                f"the {attribute} classifier of {portable_path(folder)} reads {entry['accuracy']:.3f} of "
                f"real validation images (chance {entry['chance']:.3f}, required ≥ {min_accuracy}); it "
                f"cannot judge generated images — train it longer (evaluators.attribute_steps)"
            )
    return validation


def check_gate(folder: Path, cfg: PretrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Re-check a built tiny-sd's stored gate against ``cfg``; raise :class:`GateFailedError` on a failed
    gate when ``gate_action="fail"`` (with ``"warn"`` the model is kept and the failure logged)."""
    manifest = read_artefact_manifest(folder) or {}
    gate = manifest.get("gate")
    if not gate:
        return manifest
    low = min(gate["shape"], gate["color"])
    if low >= cfg.gate_min_accuracy:
        return manifest
    message = (
        f"tiny-sd in {portable_path(folder)} failed its quality gate: shape {gate['shape']:.2f}, colour "
        f"{gate['color']:.2f} read in base-prompt samples (required ≥ {cfg.gate_min_accuracy})"
    )
    if cfg.gate_action == "fail":
        raise GateFailedError(message + f"; give the build more steps (pretrain.unet_steps={cfg.unet_steps})")
    log(f"WARNING: {message}; kept because gate_action=warn")
    return manifest


def ensure_evaluators(
    corpus_dir: Path,
    profile: str,
    cfg: EvaluatorConfig,
    log: Callable[[str], None] = print,
    folder: Path | None = None,
    force: bool = False,
) -> Path:
    out = folder or artefact_dir("glyph-world-evaluators", profile)
    want = evaluators_key(corpus_dir, cfg)
    if force or not _reusable(out, "the glyph-world evaluators", want, log):
        log(f"training the glyph-world evaluators once into {portable_path(out)}")
        train_evaluators(corpus_dir / "base", out, cfg, log=log, config_hash=want)
    check_evaluators(out, cfg.min_val_accuracy)
    return out


def ensure_tiny_sd(
    corpus_dir: Path,
    profile: str,
    cfg: PretrainConfig,
    evaluators_dir: Path | None,
    log: Callable[[str], None] = print,
    folder: Path | None = None,
    force: bool = False,
) -> Path:
    out = folder or artefact_dir("tiny-sd", profile)
    want = tiny_sd_key(corpus_dir, cfg, evaluators_dir)
    if force or not _reusable(out, "tiny-sd", want, log):
        log(f"pre-training tiny-sd once into {portable_path(out)} (resumable)")
        try:
            pretrain_tiny_sd(
                corpus_dir,
                out,
                cfg,
                evaluators_dir=evaluators_dir,
                log=log,
                config_hash=want,
                vae_key=tiny_sd_vae_key(corpus_dir, cfg),
            )
        except GateFailedError:
            shutil.rmtree(out, ignore_errors=True)  # never leave an older model that a later load could take
            raise
    check_gate(out, cfg, log)
    return out


def _profile_config(profile: str) -> HollowedNetConfig:
    from devicelab.core.config import resolve_config
    from devicelab.methods.hollowed_net.config import HollowedNetConfig

    return resolve_config(HollowedNetConfig, profile)


def build_evaluators(profile: str, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """``devicelab data build glyph-world-evaluators``: the evaluators of the profile's config."""
    from devicelab.data.corpora import ensure_corpus

    config = _profile_config(profile)
    return ensure_evaluators(
        ensure_corpus("glyph-world", profile), profile, config.evaluators, log, force=force
    )


def build_tiny_sd(profile: str, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """``devicelab data build tiny-sd``: the evaluators, then tiny-sd with the profile's pretrain config."""
    from devicelab.data.corpora import ensure_corpus

    config = _profile_config(profile)
    corpus = ensure_corpus("glyph-world", profile)
    evaluators = ensure_evaluators(corpus, profile, config.evaluators, log)
    return ensure_tiny_sd(corpus, profile, config.pretrain, evaluators, log, force=force)


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
