"""sed-tritrain: weakly labelled sound event detection with tri-training and a domain-adversarial branch
(Park et al., DCASE 2019 Workshop), against the DCASE 2019 task 4 mean-teacher CRNN.

The public pieces: the config, the networks, the pseudo-label rule, the data task, the training recipe and
the export. ``experiment.py`` (plan, run, claims, ``EXPERIMENT``) is read by the registry only.
"""

from devicelab.methods.sed_tritrain.config import SedTritrainConfig
from devicelab.methods.sed_tritrain.data import SedFrontEnd, SedSet, SedTask, Standardize, load_task
from devicelab.methods.sed_tritrain.export import export_run, load_trained
from devicelab.methods.sed_tritrain.labels import decode_strong, detect, encode_strong, median_smooth
from devicelab.methods.sed_tritrain.model import (
    CRNN,
    CNNFeatures,
    ConvHead,
    DomainClassifier,
    MeanTeacher,
    RecurrentHead,
    TriTrainingCRNN,
    attention_pooling,
    linear_softmax_pooling,
    orthogonality_penalty,
)
from devicelab.methods.sed_tritrain.pseudo import PseudoLabels, masked_bce, pool_fraction, pseudo_label
from devicelab.methods.sed_tritrain.recipe import SedDetector, build_crnn, build_tritrain, train_stage

__all__ = [
    "CNNFeatures",
    "CRNN",
    "ConvHead",
    "DomainClassifier",
    "MeanTeacher",
    "PseudoLabels",
    "RecurrentHead",
    "SedDetector",
    "SedFrontEnd",
    "SedSet",
    "SedTask",
    "SedTritrainConfig",
    "Standardize",
    "TriTrainingCRNN",
    "attention_pooling",
    "build_crnn",
    "build_tritrain",
    "decode_strong",
    "detect",
    "encode_strong",
    "export_run",
    "linear_softmax_pooling",
    "load_task",
    "load_trained",
    "masked_bce",
    "median_smooth",
    "orthogonality_penalty",
    "pool_fraction",
    "pseudo_label",
    "train_stage",
]
