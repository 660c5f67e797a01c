"""The training and evaluation of one sv-kan stage: a model variant trained with one seed (spec §2-§4).

Variants: ``base`` (triplet loss), ``kan`` (triplet loss + keyword adversary through gradient reversal),
``ge2e`` (GE2E softmax loss), ``gmm-ubm`` (no network). Every variant is scored on the same trials.
Per step: P speakers x K utterances, random crops of the mean-normalised log-mel, Adam with a per-step
cosine decay of the learning rate to 0, and for ``kan`` the Ganin schedule of lambda (spec §2.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

from devicelab.core.checkpoint import save_model
from devicelab.core.config import ConfigError, to_dict
from devicelab.core.seeding import child_rng, seed_everything
from devicelab.core.stages import Stage
from devicelab.core.training import fit
from devicelab.methods.sv_kan.config import SvKanConfig
from devicelab.methods.sv_kan.data import HOP_MS, SpeechSet, SvTask
from devicelab.methods.sv_kan.gmm_ubm import gmm_scores, mfcc_frames, train_ubm
from devicelab.methods.sv_kan.losses import GE2ELoss, triplet_loss
from devicelab.methods.sv_kan.model import KeywordAdversary, ResNetSE
from devicelab.methods.sv_kan.trials import (
    Trials,
    build_trials,
    cosine_scores,
    det_curve,
    keyword_probe,
    verification_metrics,
)
from devicelab.nn.gradient_reversal import dann_lambda
from devicelab.nn.utils import count_parameters

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

VARIANTS = ("base", "kan", "ge2e", "gmm-ubm")
NETWORK_VARIANTS = ("base", "kan", "ge2e")


def check_config(config: SvKanConfig) -> None:
    """One-line errors, before any data is read, for choices this implementation does not support."""
    check_variants(config.variants)
    if config.adversary != "keyword":
        raise ConfigError(
            f"adversary={config.adversary!r} is not implemented (see FIDELITY.md); use adversary=keyword"
        )
    if config.adv_input == "frames":
        raise ConfigError("adv_input='frames' belongs to the CTC adversary; use embedding or pre_norm")


def check_variants(variants: list[str]) -> None:
    """A one-line error naming an unknown or repeated variant."""
    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"variants: unknown variant {v!r}; valid: {', '.join(VARIANTS)}")
    if len(set(variants)) != len(variants):
        raise ConfigError(f"variants repeat: {', '.join(variants)}")


def build_embedder(config: SvKanConfig) -> ResNetSE:
    """The SE network of the config (spec §2.2)."""
    return ResNetSE(config.n_mels, config.channels, config.blocks, config.embedding_dim)


class SpeakerSystem(nn.Module):
    """What one stage trains: the SE network, plus the keyword adversary (kan) or the GE2E scale (ge2e)."""

    def __init__(self, config: SvKanConfig, variant: str, num_keywords: int):
        super().__init__()
        self.embedder = build_embedder(config)
        self.adversary = None
        self.ge2e = None
        if variant == "kan":
            if config.adversary != "keyword":
                raise ConfigError(f"adversary={config.adversary!r} is not implemented; use keyword")
            self.adversary = KeywordAdversary(config.embedding_dim, num_keywords, config.adv_hidden)
        elif variant == "ge2e":
            self.ge2e = GE2ELoss(config.ge2e_init_w, config.ge2e_init_b, reduction="mean")


def crop_frames(crop_s: float) -> int:
    """Frames of a ``crop_s`` second crop at a 10 ms hop (centred STFT: one more than the hops)."""
    return int(round(crop_s * 1000 / HOP_MS)) + 1


def random_crop(features: torch.Tensor, length: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``length``-frame crop of (n_mels, T); shorter items are tiled to length first."""
    t = features.shape[-1]
    if t < length:
        features = features.repeat(1, math.ceil(length / t) + 1)
        t = features.shape[-1]
    start = int(rng.integers(0, t - length + 1))
    return features[:, start : start + length]


def pk_batches(
    speakers: torch.Tensor, p: int, k: int, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` batches of ``p`` speakers x ``k`` utterances (indices, speaker-major); speakers cycle through
    random permutations, utterances are drawn without replacement within a batch."""
    pools = {int(s): np.flatnonzero(speakers.numpy() == s) for s in torch.unique(speakers)}
    eligible = np.array(sorted(s for s, pool in pools.items() if len(pool) >= k))
    if len(eligible) < p:
        raise ConfigError(
            f"speakers_per_batch={p}: only {len(eligible)} training speakers have {k} utterances "
            "(utterances_per_speaker)"
        )
    order: list[int] = []
    batches = []
    for _ in range(count):
        if len(order) < p:
            order += rng.permutation(eligible).tolist()
        chosen, order = order[:p], order[p:]
        batches.append(np.concatenate([rng.choice(pools[s], size=k, replace=False) for s in chosen]))
    return batches


def cosine_lr(step: int, total: int, peak: float) -> float:
    """Cosine decay from ``peak`` at step 0 to 0 at ``total``."""
    return 0.5 * peak * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))


def make_train_epoch(
    system: SpeakerSystem, optimizer: torch.optim.Optimizer, train: SpeechSet, config: SvKanConfig, seed: int
) -> Callable[[int], dict[str, float]]:
    """``train_epoch(epoch)`` for :func:`devicelab.core.training.fit`; batches and crops of an epoch come
    from ``child_rng(seed, "batches", epoch)``, so a resumed epoch is identical."""
    p, k = config.speakers_per_batch, config.utterances_per_speaker
    per_epoch = max(1, len(train) // (p * k))
    total = per_epoch * config.epochs
    length = crop_frames(config.crop_s)
    speakers = train.speaker_index()

    def train_epoch(epoch: int) -> dict[str, float]:
        system.train()
        rng = child_rng(seed, "batches", epoch)
        sums = {"loss": 0.0, "triplet": 0.0, "adv": 0.0, "adv_acc": 0.0}
        lr = lam = 0.0
        for b, batch in enumerate(pk_batches(speakers, p, k, per_epoch, rng)):
            step = epoch * per_epoch + b
            x = torch.stack([random_crop(train.features[i], length, rng) for i in batch]).unsqueeze(1)
            spk, kw = speakers[batch], train.keyword[batch]
            emb = system.embedder.embed(x)  # (P*K, D)
            if system.ge2e is not None:
                loss = system.ge2e(emb.normalized.view(p, k, -1))
                sums["triplet"] += float(loss.detach())
            else:
                trip = triplet_loss(
                    emb.normalized, spk, config.triplet_margin, config.mining, kw, config.text_aware_positives
                )
                loss = trip
                sums["triplet"] += float(trip.detach())
            if system.adversary is not None:
                lam = dann_lambda(step / total, config.lambda_gamma, config.lambda_max)
                system.adversary.scale = lam
                logits = system.adversary(emb.normalized if config.adv_input == "embedding" else emb.raw)
                adv = F.cross_entropy(logits, kw)
                loss = loss + adv  # the reversal makes the SE network descend on L_trip - lambda L_adv
                sums["adv"] += float(adv.detach())
                sums["adv_acc"] += float((logits.argmax(1) == kw).float().mean())
            lr = cosine_lr(step, total, config.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["loss"] += float(loss.detach())
        record = {key: value / per_epoch for key, value in sums.items()}
        if system.adversary is None:
            record.pop("adv"), record.pop("adv_acc")
        return {**record, "lr": lr, "lambda": lam}

    return train_epoch


@torch.no_grad()
def embed_all(embedder: ResNetSE, speech: SpeechSet) -> torch.Tensor:
    """Embeddings (N, D) of whole items, one at a time (eval mode: no padding enters the pooling)."""
    embedder.eval()
    return torch.cat([embedder(f[None, None]) for f in speech.features]) if len(speech) else torch.zeros(0)


def trial_sets(speech: SpeechSet, config: SvKanConfig, name: str, n_enrol: int) -> dict[str, Trials]:
    """The trials of one split, drawn with the config's base seed so every model sees the same ones."""
    return build_trials(
        speech.identity,
        speech.keyword.tolist(),
        speech.group,
        n_enrol=n_enrol,
        seed=config.seed,
        name=name,
        per_enrolment=config.ntk_trials_per_enrolment,
        sibling_impostors=config.sibling_impostors,
    )


def score_all(
    task: SvTask, config: SvKanConfig, score: Callable[[str, Trials], np.ndarray]
) -> dict[str, Any]:
    """EER (%), minDCF and TPR at 1 % FPR of every trial set; ``score(split, trials)`` gives the scores.

    Keys (n_enrol = 1): ``eer_tk``, ``eer_ntk``, ``eer_avg`` = (TK + NTK)/2, ``eer_gap`` = NTK - TK,
    ``eer_sibling``, ``eer_ti`` (no keywords), ``eer_real``, ``eer_corpus_<split>_<kind>``; other enrolment
    counts add ``_e<n>``. A count the data cannot support leaves its keys out ("n/a").
    """
    out: dict[str, Any] = {}
    for n_enrol in config.n_enrol:
        suffix = "" if n_enrol == 1 else f"_e{n_enrol}"
        for kind, trials in trial_sets(task.test, config, "test", n_enrol).items():
            if not trials.scorable:
                continue
            scores = score("test", trials)
            for metric, value in verification_metrics(scores, trials.label).items():
                out[f"{metric}_{kind}{suffix}"] = value
            out[f"trials_{kind}{suffix}"] = len(trials)
            if n_enrol == 1 and kind in ("tk", "ntk", "ti"):
                out.setdefault("det", {})[kind] = det_curve(scores, trials.label)
        if f"eer_tk{suffix}" in out and f"eer_ntk{suffix}" in out:
            out[f"eer_avg{suffix}"] = 0.5 * (out[f"eer_tk{suffix}"] + out[f"eer_ntk{suffix}"])
            out[f"eer_gap{suffix}"] = out[f"eer_ntk{suffix}"] - out[f"eer_tk{suffix}"]
    if task.real is not None:
        pooled = Trials()
        for trials in trial_sets(task.real, config, "real", 1).values():
            for e, t, y in zip(trials.enrol, trials.test, trials.label):
                pooled.add(e, t, y)
        if pooled.scorable:
            out["eer_real"] = verification_metrics(score("real", pooled), pooled.label)["eer"]
            out["trials_real"] = len(pooled)
    for name, pairs in task.corpus_trials.items():
        trials = Trials()
        for label, a, b in pairs:
            trials.add((a,), b, label)
        if trials.scorable:
            split = name.split("_")[0]
            out[f"eer_corpus_{name}"] = verification_metrics(score(split, trials), trials.label)["eer"]
    return out


def tsne_points(embeddings: torch.Tensor, speech: SpeechSet, speakers: int, seed: int) -> dict[str, list]:
    """2-D t-SNE of the test embeddings of the first ``speakers`` identities, for the plots."""
    from sklearn.manifold import TSNE

    chosen = sorted(set(speech.identity))[:speakers]
    keep = [i for i, who in enumerate(speech.identity) if who in chosen]
    if len(keep) < 5:
        return {}
    perplexity = float(min(30.0, (len(keep) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings[keep].numpy())
    return {
        "x": xy[:, 0].round(3).tolist(),
        "y": xy[:, 1].round(3).tolist(),
        "speaker": [chosen.index(speech.identity[i]) for i in keep],
        "keyword": [int(speech.keyword[i]) for i in keep],
    }


def train_stage(task: SvTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Train one variant with one seed and score it on every trial set; the stage's JSON result."""
    config: SvKanConfig = ctx.config
    if stage.variant == "gmm-ubm":
        return gmm_stage(task, stage, config)
    seed_everything(stage.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    system = SpeakerSystem(config, stage.variant, len(task.keywords))
    optimizer = torch.optim.Adam(system.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = fit(
        system,
        optimizer,
        make_train_epoch(system, optimizer, task.train, config, stage.seed),
        config.epochs,
        checkpoint=ctx.checkpoint(stage.name),
        log=ctx.log,
        desc=stage.name,
    )
    train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    with threadpool_limits(torch.get_num_threads()):  # scikit-learn and BLAS: the worker's thread budget
        result = evaluate_network(task, stage, config, system.embedder.eval())
    result |= {
        "params": count_parameters(system.embedder),
        "train_wall_s": train_wall,
        "train_cpu_s": train_cpu,
    }
    result["history"] = history
    save_model(
        ctx.run_dir / "models" / stage.name,
        system.embedder,
        {
            "variant": stage.variant,
            "seed": stage.seed,
            "eer_avg": result.get("eer_avg"),
            "config": to_dict(config),
        },
    )
    return result


def evaluate_network(task: SvTask, stage: Stage, config: SvKanConfig, embedder: ResNetSE) -> dict[str, Any]:
    """Scores on every trial set, the keyword probe and (first seed) the t-SNE points of one SE network."""
    embeddings = {"test": embed_all(embedder, task.test)}
    if task.real is not None:
        embeddings["real"] = embed_all(embedder, task.real)
    result: dict[str, Any] = {"name": stage.name, "variant": stage.variant, "seed": stage.seed}
    result |= score_all(task, config, lambda split, trials: cosine_scores(embeddings[split], trials))
    if (task.test.keyword >= 0).any():
        keywords = task.test.keyword.tolist()
        result |= keyword_probe(embeddings["test"], keywords, task.test.speaker, config.probe_folds)
    if stage.seed == config.seed and config.tsne_speakers:
        result["tsne"] = tsne_points(embeddings["test"], task.test, config.tsne_speakers, stage.seed)
    return result


def gmm_stage(task: SvTask, stage: Stage, config: SvKanConfig) -> dict[str, Any]:
    """Train the UBM on a seeded subset of training frames and score every trial set (spec §4)."""
    wall, cpu = time.perf_counter(), time.process_time()
    rng = child_rng(stage.seed, "ubm-frames")
    per_item = max(1, math.ceil(config.gmm_max_frames / max(1, len(task.train))))
    subset = []
    for f in task.train.features:
        frames = mfcc_frames(f)
        subset.append(frames[rng.choice(len(frames), size=min(per_item, len(frames)), replace=False)])
    with threadpool_limits(torch.get_num_threads()):
        ubm = train_ubm(np.concatenate(subset), config.gmm_components, config.gmm_iterations, stage.seed)
    frames = {"test": [mfcc_frames(f) for f in task.test.features]}
    if task.real is not None:
        frames["real"] = [mfcc_frames(f) for f in task.real.features]
    result: dict[str, Any] = {"name": stage.name, "variant": "gmm-ubm", "seed": stage.seed}
    result |= score_all(
        task,
        config,
        lambda split, trials: gmm_scores(ubm, frames[split], trials.enrol, trials.test, config.gmm_relevance),
    )
    result |= {"train_wall_s": time.perf_counter() - wall, "train_cpu_s": time.process_time() - cpu}
    return result
