"""The sv-kan config: class defaults are the quick profile; ``PROFILES`` changes smoke and full (spec §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from devicelab.core.config import ranged


@dataclass
class SvKanConfig:
    """ResNet speaker embeddings with a triplet loss, with and without the keyword adversary (spec §2-§4).

    Every field marked [reconstruction] is a detail the paper leaves open; its default is the spec's.
    """

    seed: int = 0  # base seed; seed k of a variant trains with seed + k
    seeds: int = ranged(3, low=1)
    # "base" (triplet only), "kan" (triplet + keyword adversary), "ge2e" (GE2E loss), "gmm-ubm" (trained once)
    variants: list[str] = field(default_factory=lambda: ["base", "kan", "gmm-ubm"])
    # SE network, spec §2.2 [reconstruction]
    channels: list[int] = ranged(low=1, default_factory=lambda: [16, 32, 64, 128])
    blocks: list[int] = ranged(low=1, default_factory=lambda: [1, 1, 1, 1])
    embedding_dim: int = ranged(128, low=1)
    # keyword adversary, spec §2.3 [reconstruction]
    adversary: Literal["keyword", "ctc_phones"] = "keyword"
    adv_input: Literal["embedding", "pre_norm", "frames"] = "embedding"
    adv_hidden: int = ranged(256, low=1)
    lambda_max: float = ranged(0.5, low=0)
    lambda_gamma: float = ranged(10.0, low=0)
    # triplet loss, spec §2.4 [reconstruction]
    speakers_per_batch: int = ranged(16, low=2)  # P
    utterances_per_speaker: int = ranged(4, low=2)  # K
    triplet_margin: float = ranged(0.3, low=0)
    mining: Literal["batch_all", "batch_hard", "semi_hard"] = "batch_all"
    text_aware_positives: bool = False
    # GE2E baseline, spec §4
    ge2e_init_w: float = 10.0
    ge2e_init_b: float = -5.0
    # GMM-UBM baseline, spec §4 [reconstruction]
    gmm_components: int = ranged(64, low=1)
    gmm_relevance: float = ranged(16.0, low=0)
    gmm_iterations: int = ranged(20, low=1)
    gmm_max_frames: int = ranged(150_000, low=100)  # UBM training frames, a seeded random subset
    # optimisation, spec §3 [reconstruction]
    epochs: int = ranged(8, low=1)
    lr: float = ranged(1e-3, low=0)
    weight_decay: float = ranged(1e-5, low=0)
    crop_s: float = ranged(1.5, low=0.1)
    # features, spec §2.1 [reconstruction]
    n_mels: int = ranged(40, low=1)
    # trials and evaluation, spec §2.5
    n_enrol: list[int] = ranged(low=1, default_factory=lambda: [1])  # the claims read n_enrol = 1
    ntk_trials_per_enrolment: int = ranged(4, low=1)  # NTK target (and as many non-target) trials
    sibling_impostors: Literal["exclude", "include"] = "exclude"
    probe_folds: int = ranged(5, low=2)
    allow_balanced: bool = False  # accept a corpus built without the text-speaker confound (control)
    tsne_speakers: int = ranged(10, low=0)  # speakers in the t-SNE plots (0: no plot)
    # data
    corpus: str = "synth-speakers"  # used when no --data is given
    keyword_source: Literal["alignments", "none"] = "alignments"  # LibriSpeech --data only (spec §6)
    vocabulary_size: int = ranged(50, low=2)
    min_word_letters: int = ranged(5, low=1)
    train_subsets: list[str] = field(default_factory=lambda: ["train-clean-100"])
    test_subset: str = "test-clean"
    max_train_utterances: int = ranged(0, low=0)  # 0 = all; a speaker-stratified subset for smoke runs
    # execution
    workers: int = ranged(0, low=0)  # stages trained in parallel processes; 0: one per core
    threads: int = ranged(1, low=1)  # torch threads per worker

    PROFILES: ClassVar[dict[str, dict]] = {
        "smoke": {
            "seeds": 1,
            "epochs": 2,
            "channels": [8, 16, 16, 32],
            "embedding_dim": 32,
            "speakers_per_batch": 4,
            "gmm_components": 4,
            "gmm_iterations": 3,
            "gmm_max_frames": 5000,
            "probe_folds": 2,
            "tsne_speakers": 3,
            "workers": 1,
        },
        "full": {
            "variants": ["base", "kan", "ge2e", "gmm-ubm"],
            "channels": [32, 64, 128, 256],
            "blocks": [3, 4, 6, 3],
            "embedding_dim": 256,
            "speakers_per_batch": 32,
            "gmm_components": 512,
            "gmm_max_frames": 2_000_000,
            "epochs": 60,
            "crop_s": 2.0,
            "n_enrol": [1, 2, 3],
        },
    }
