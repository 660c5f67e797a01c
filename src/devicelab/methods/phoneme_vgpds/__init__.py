"""phoneme-vgpds: phoneme classification with a constrained variational GP dynamical system (NIPS 2012).

The numerical core: the VGPDS bound in stable float64 form batched over classes and padded tokens
(``kernels``, ``bound``, ``model``), the variance-constraint options (``constraints``), initialisation,
training and bound-difference scoring (``training``), the GMM-HMM and GMM baselines (``hmm``) and the
in-process synthetic sets (``synthetic``); the MFCC + Δ + ΔΔ front end (``features``), phone tokens from TIMIT
or ``synth-phones`` (``data``) and one experiment stage (``recipe``). ``FIDELITY.md`` lists what is
reconstructed.
"""

from devicelab.methods.phoneme_vgpds.bound import (
    CollapsedBound,
    EmissionStatistics,
    LatentMarginals,
    collapsed_bound,
    dynamic_latent_marginals,
    emission_statistics,
    inducing_cholesky,
    isotropic_latent_marginals,
    time_prior_marginals,
)
from devicelab.methods.phoneme_vgpds.config import (
    ConstraintConfig,
    FeatureConfig,
    GmmConfig,
    HmmConfig,
    PhonemeVgpdsConfig,
    SyntheticClassificationConfig,
    SyntheticEstimationConfig,
    VgpdsConfig,
)
from devicelab.methods.phoneme_vgpds.constraints import constraint_penalty, dual_ascent, latent_scale
from devicelab.methods.phoneme_vgpds.data import PhoneTask, draw_split, load_task
from devicelab.methods.phoneme_vgpds.features import PhoneFeatures, cut_tokens, delta
from devicelab.methods.phoneme_vgpds.hmm import (
    DiagonalGmm,
    FrameGmmClassifier,
    GmmHmmClassifier,
    LeftToRightHmm,
)
from devicelab.methods.phoneme_vgpds.kernels import psi0, psi1, psi2, rbf_ard, time_kernel
from devicelab.methods.phoneme_vgpds.model import ModelTerms, VgpdsModels
from devicelab.methods.phoneme_vgpds.synthetic import (
    ClassificationSet,
    EstimationSet,
    classification_set,
    estimation_set,
)
from devicelab.methods.phoneme_vgpds.tokens import PaddedTokens, class_log_prior, pad_tokens
from devicelab.methods.phoneme_vgpds.training import (
    ClassSnapshot,
    VgpdsClassifier,
    extended_bound,
    initialise_models,
    score_tokens,
    train_models,
    training_step,
)

__all__ = [
    "load_task",
    "draw_split",
    "delta",
    "cut_tokens",
    "PhoneFeatures",
    "PhoneTask",
    "PhonemeVgpdsConfig",
    "FeatureConfig",
    "ClassSnapshot",
    "ClassificationSet",
    "CollapsedBound",
    "ConstraintConfig",
    "DiagonalGmm",
    "EmissionStatistics",
    "EstimationSet",
    "FrameGmmClassifier",
    "GmmConfig",
    "GmmHmmClassifier",
    "HmmConfig",
    "LatentMarginals",
    "LeftToRightHmm",
    "ModelTerms",
    "PaddedTokens",
    "SyntheticClassificationConfig",
    "SyntheticEstimationConfig",
    "VgpdsClassifier",
    "VgpdsConfig",
    "VgpdsModels",
    "class_log_prior",
    "classification_set",
    "collapsed_bound",
    "constraint_penalty",
    "dual_ascent",
    "dynamic_latent_marginals",
    "emission_statistics",
    "estimation_set",
    "extended_bound",
    "inducing_cholesky",
    "initialise_models",
    "isotropic_latent_marginals",
    "latent_scale",
    "pad_tokens",
    "psi0",
    "psi1",
    "psi2",
    "rbf_ard",
    "score_tokens",
    "time_kernel",
    "time_prior_marginals",
    "train_models",
    "training_step",
]
