"""kws-ssn: SubSpectral Normalization in BC-ResNet and res8/res15 keyword spotting (arXiv 2103.13620).

The public pieces: the config, the data task, the training recipe, the deployable model and its export.
``experiment.py`` (plan, run, claims, ``EXPERIMENT``) is read by the registry only.
"""

from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.data import KwsTask, load_task
from devicelab.methods.kws_ssn.export import KeywordSpotter, deployable, export_run, load_trained
from devicelab.methods.kws_ssn.recipe import (
    BCRESNET_VARIANTS,
    ModelChoice,
    build_bcresnet,
    plan_models,
    train_stage,
)

__all__ = [
    "BCRESNET_VARIANTS",
    "KeywordSpotter",
    "KwsSsnConfig",
    "KwsTask",
    "ModelChoice",
    "build_bcresnet",
    "deployable",
    "export_run",
    "load_task",
    "load_trained",
    "plan_models",
    "train_stage",
]
