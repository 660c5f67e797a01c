"""asc-factorized: the large-margin factorised CNN for acoustic scene classification (arXiv 1910.06784).

The public pieces: the config, the data task, the models, the environment-aware triplet loss and its batch
sampler, the training recipe and the export. ``experiment.py`` (plan, run, claims, ``EXPERIMENT``) is read by
the registry only. The factorised convolution itself is shared: :mod:`devicelab.nn.factorized`.
"""

from devicelab.methods.asc_factorized.config import AscFactorizedConfig
from devicelab.methods.asc_factorized.data import SceneLogMel, SceneTask, load_task
from devicelab.methods.asc_factorized.export import WaveformSceneClassifier, deployable, export_run
from devicelab.methods.asc_factorized.loss import environment_triplet_loss, pair_masks, triplet_terms
from devicelab.methods.asc_factorized.model import SceneClassifier, SceneCNN, Standardize
from devicelab.methods.asc_factorized.recipe import build_cnn, model_spec, plan_variants, train_stage
from devicelab.methods.asc_factorized.sampler import NoCrossEnvironmentPairsError, SceneEnvironmentSampler

__all__ = [
    "AscFactorizedConfig",
    "NoCrossEnvironmentPairsError",
    "SceneCNN",
    "SceneClassifier",
    "SceneEnvironmentSampler",
    "SceneLogMel",
    "SceneTask",
    "Standardize",
    "WaveformSceneClassifier",
    "build_cnn",
    "deployable",
    "environment_triplet_loss",
    "export_run",
    "load_task",
    "model_spec",
    "pair_masks",
    "plan_variants",
    "train_stage",
    "triplet_terms",
]
