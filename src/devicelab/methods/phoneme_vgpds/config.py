"""Configs of the phoneme-vgpds numerical core: the GP models, the variance constraint, the HMM and GMM
baselines and the in-process synthetic sets (spec §2–§4, §7). Defaults are the quick profile (spec §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from devicelab.core.config import ranged

ConstraintName = Literal["nystrom", "latent_var", "snr", "none"]
ConstraintSolver = Literal["penalty", "dual"]
LatentPrior = Literal["gp_time", "isotropic"]
MeanParametrisation = Literal["mean_bar", "mean"]
Optimizer = Literal["adam", "lbfgs"]
HmmTraining = Literal["viterbi", "baum_welch"]


@dataclass
class ConstraintConfig:
    """The variance constraint of spec §2.4 [reconstruction: the paper's exact form is unknown].

    ``nystrom`` (V1, default): penalise the Nyström error ratio r above ``epsilon``; ``latent_var`` (V2): cap
    the latent variational variances at ``s_max``; ``snr`` (V3): tie σ_f² + β⁻¹ to the data variance with a
    signal share of at least ``v_min``; ``none``: unconstrained VGPDS.
    """

    name: ConstraintName = "nystrom"
    epsilon: float = ranged(0.05, low=0, high=1)  # V1: tolerated Nyström error ratio ε
    weight: float = ranged(10.0, low=0)  # V1: penalty weight ρ (initial multiplier for the dual solver)
    solver: ConstraintSolver = "penalty"  # V1: quadratic penalty, or dual ascent on ρ
    dual_step: float = ranged(1.0, low=0)  # V1 dual: η in ρ ← max(0, ρ + η(r − ε))
    dual_every: int = ranged(10, low=1)  # V1 dual: iterations between multiplier updates
    s_max: float = ranged(0.1, low=0)  # V2: cap on diag S_q
    v_min: float = ranged(0.5, low=0, high=1)  # V3: smallest signal share σ_f² / v̂


@dataclass
class VgpdsConfig:
    """One (C)VGPDS per class, trained batched over classes and scored by bound difference (spec §2.2–§2.6).

    ``latent_prior="gp_time"`` is the VGPDS (GP prior over time on each latent column); ``"isotropic"`` is the
    Bayesian GP-LVM without dynamics (K_t = I), the baseline of spec §4.
    """

    latent_dim: int = ranged(2, low=1)  # Q
    num_inducing: int = ranged(10, low=1)  # M
    latent_prior: LatentPrior = "gp_time"
    # free variational mean: μ̄ with μ = K_t μ̄ (spec §2.2, vargplvm), or μ itself with μ̄ = K_t⁻¹ μ by Cholesky
    # [reconstruction: same q(X) and bound, other optimisation coordinates; see FIDELITY.md]
    mean_parametrisation: MeanParametrisation = "mean_bar"
    constraint: ConstraintConfig = field(default_factory=ConstraintConfig)
    # training (spec §2.5)
    optimizer: Optimizer = "adam"
    lr: float = ranged(0.01, low=0)
    train_iters: int = ranged(300, low=0)
    fixed_beta_iters: int = ranged(100, low=0)  # β (and V3's split) held at its SNR init this long
    checkpoint_every: int = ranged(25, low=1)  # iterations per checkpoint and per history record
    # scoring (spec §2.6)
    test_iters: int = ranged(100, low=0)
    test_lr: float = ranged(0.05, low=0)
    score_with_penalty: bool = False  # [reconstruction] scores use F without the constraint's penalty
    use_class_prior: bool = True  # argmax of score + log π_c
    # initialisation (spec §2.5)
    init_snr: float = ranged(100.0, low=0)  # β = SNR / v̂
    init_median_variance: float = ranged(0.18, low=0)  # bisection target for median(diag S)
    inverse_width_mult: float = ranged(5.0, low=0)  # w_q = mult / (max μ_q − min μ_q)²
    time_inverse_width: float = ranged(5.0, low=0)  # 1/ℓ_t² = this / t_range²
    time_rbf_variance: float = ranged(1.0, low=0)  # σ_r², fixed
    time_white_variance: float = ranged(1e-3, low=0)  # σ_w², initial value (learned)
    time_bias_variance: float = ranged(0.1, low=0)  # σ_b², initial value (learned)
    min_snr_warning: float = ranged(10.0, low=0)  # warn when the final β·v̂ is below this
    # numerics (spec §2.3)
    jitter_scale: float = ranged(1e-6, low=0)  # K_MM jitter = jitter_scale · σ_f²
    frame_period_s: float = ranged(0.01, low=0)  # token times t = frame_period_s · (0 … n−1)
    seed: int = 0


@dataclass
class HmmConfig:
    """Left-to-right GMM-HMM per class, the classical baseline (spec §4) [reconstruction of the set-up]."""

    states: int = ranged(3, low=1)
    mixtures: int = ranged(2, low=1)
    training: HmmTraining = "viterbi"
    rounds: int = ranged(10, low=0)  # segmental k-means or Baum–Welch rounds
    reg_covar: float = ranged(1e-3, low=0)
    seed: int = 0


@dataclass
class GmmConfig:
    """Bag-of-frames diagonal GMM per class (spec §4)."""

    components: int = ranged(4, low=1)
    reg_covar: float = ranged(1e-3, low=0)
    seed: int = 0


@dataclass
class SyntheticEstimationConfig:
    """Parameter-estimation set of spec §7: sequences drawn from a known VGPDS."""

    sequences: int = ranged(20, low=1)
    frames: int = ranged(30, low=2)  # n per sequence
    output_dim: int = ranged(10, low=1)  # D
    latent_dim: int = ranged(2, low=1)  # Q
    time_lengthscale_s: float = ranged(0.05, low=0)  # ℓ_t
    inverse_widths: list[float] = ranged(low=0, default_factory=lambda: [1.0, 0.5])  # w_q
    signal_variance: float = ranged(1.0, low=0)  # σ_f²
    noise_precision: float = ranged(100.0, low=0)  # β
    frame_period_s: float = ranged(0.01, low=0)
    seed: int = 0


@dataclass
class SyntheticClassificationConfig:
    """Classification set of spec §7: classes differ only in ℓ_t and share one emission map.

    The latent columns are stationary GPs of unit variance in every class, so the frame marginals are
    identical and a bag-of-frames model is at chance by construction. ``output_dim``, ``noise_variance`` and
    the emission's inverse widths are [reconstruction] (the spec fixes the rest).
    """

    time_lengthscales_s: list[float] = ranged(low=0, default_factory=lambda: [0.02, 0.05, 0.15])
    train_per_class: int = ranged(30, low=1)
    test_per_class: int = ranged(30, low=1)
    frames: int = ranged(20, low=2)
    output_dim: int = ranged(6, low=1)
    latent_dim: int = ranged(2, low=1)
    fourier_features: int = ranged(256, low=1)
    emission_inverse_width: float = ranged(1.0, low=0)  # w_q of the emission RBF kernel, all q
    signal_variance: float = ranged(1.0, low=0)
    noise_variance: float = ranged(0.01, low=0)
    frame_period_s: float = ranged(0.01, low=0)
    seed: int = 0


# ----------------------------------------------------------------------------------------------- experiment
QUICK_CLASSES = ["iy", "ae", "aa", "uw", "er", "s", "sh", "f", "m", "n"]
TimitSubset = Literal["test", "core_test", "dev"]


@dataclass
class FeatureConfig:
    """MFCC + Δ + ΔΔ front end of spec §2.1 [reconstruction]: 25 ms Hamming, 10 ms hop, 512-point FFT, 40
    mel bands 20–7600 Hz, log power, orthonormal DCT-II c0–c12, regression window 2; per-utterance CMVN."""

    sample_rate_hz: int = ranged(16000, low=1)
    window_ms: float = ranged(25.0, low=0)
    hop_ms: float = ranged(10.0, low=0)
    n_fft: int = ranged(512, low=1)
    n_mels: int = ranged(40, low=1)
    f_min_hz: float = ranged(20.0, low=0)
    f_max_hz: float = ranged(7600.0, low=0)
    n_cepstra: int = ranged(13, low=1)  # c0 … c12
    delta_window: int = ranged(2, low=0)  # 0: no Δ, ΔΔ
    log_offset: float = ranged(1e-10, low=0)
    cmvn: bool = True  # per-utterance mean and variance normalisation


@dataclass
class PhonemeVgpdsConfig:
    """CVGPDS against GMM, GMM-HMM, BGPLVM and unconstrained VGPDS on phone tokens and on the synthetic set.

    Defaults are the quick profile (spec §3): 10 classes of ``synth-phones``, 40 train / 25 test tokens per
    class, Q = 2, M = 10. Every GP variant trains with Adam at lr 0.05 in the μ coordinates
    (``vgpds.mean_parametrisation="mean"``): the spec's μ̄ coordinates at lr 0.01 do not learn the time
    lengthscale (FIDELITY.md); ``vgpds.mean_parametrisation=mean_bar vgpds.lr=0.01`` restores them.
    """

    seed: int = 0  # base seed; seed k subsamples tokens and initialises every model with seed + k
    seeds: int = ranged(3, low=1)
    variants: list[str] = field(default_factory=lambda: ["gmm", "gmm-hmm", "bgplvm", "vgpds", "cvgpds"])
    # data (spec §2.1, §3, §5, §6)
    corpus: str = "synth-phones"  # used when no --data is given
    classes: list[str] = field(default_factory=lambda: list(QUICK_CLASSES))  # 39-set labels; [] = all 39
    train_tokens_per_class: int = ranged(40, low=1)
    test_tokens_per_class: int = ranged(25, low=0)  # 0 = every test token
    min_frames: int = ranged(4, low=1)
    max_frames: int = ranged(16, low=1)
    test_subset: TimitSubset = "test"  # TIMIT: core_test in full; synth-phones has held-out TEST voices
    drop_hsharp: bool = True  # [reconstruction] utterance-edge h# segments are not tokens
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # models (spec §2, §4)
    vgpds: VgpdsConfig = field(default_factory=lambda: VgpdsConfig(mean_parametrisation="mean", lr=0.05))
    hmm: HmmConfig = field(default_factory=HmmConfig)
    gmm: GmmConfig = field(default_factory=GmmConfig)
    # the synthetic classification set of spec §7 (P4), trained beside the phone tokens
    synthetic: SyntheticClassificationConfig = field(default_factory=SyntheticClassificationConfig)
    synthetic_set: bool = True
    # the parameter-estimation set of spec §7 (no claim): (C)VGPDS fitted to sequences of a known VGPDS
    estimation: SyntheticEstimationConfig = field(default_factory=SyntheticEstimationConfig)
    estimation_set: bool = True
    # execution
    workers: int = ranged(0, low=0)  # stages trained in parallel processes; 0: one per core
    threads: int = ranged(1, low=1)  # torch threads per worker

    PROFILES: ClassVar[dict[str, dict]] = {
        "smoke": {
            "seeds": 1,
            "classes": ["aa", "s", "n"],
            "train_tokens_per_class": 5,
            "test_tokens_per_class": 5,
            "max_frames": 12,
            "vgpds.num_inducing": 4,
            "vgpds.train_iters": 20,
            "vgpds.fixed_beta_iters": 5,
            "vgpds.test_iters": 10,
            "vgpds.checkpoint_every": 5,
            "hmm.states": 3,
            "hmm.mixtures": 1,
            "gmm.components": 2,
            "synthetic.train_per_class": 5,
            "synthetic.test_per_class": 5,
            "estimation.sequences": 5,
            "estimation.frames": 12,
            "workers": 1,
        },
        "full": {
            "classes": [],
            "train_tokens_per_class": 500,
            "test_tokens_per_class": 0,
            "min_frames": 3,
            "max_frames": 30,
            "test_subset": "core_test",
            "vgpds.latent_dim": 4,
            "vgpds.num_inducing": 20,
            "vgpds.train_iters": 1500,
            "vgpds.fixed_beta_iters": 300,
            "vgpds.test_iters": 200,
            "hmm.mixtures": 8,
            "gmm.components": 16,
        },
    }
