"""FedUA: federated learning of user-authentication models with secret codewords (Hosseini et al., arXiv
2007.04618), FedUV-style BCH codewords (arXiv 2104.08776) as an option, and the baselines (naive positive-only
FedAvg, FedAwS, centralised softmax) as pure federated algorithms."""

from devicelab.methods.fed_ua.algorithms import (
    FedAwS,
    FedUA,
    NaiveFedAvg,
    PositiveOnlyFedAvg,
    PrivacyAuditError,
    warmup_threshold,
)
from devicelab.methods.fed_ua.codes import BCHCode, bch_codeword, random_codeword, secure_random_codeword
from devicelab.methods.fed_ua.config import FedUAConfig
from devicelab.methods.fed_ua.data import SpeakerTask, load_vox_task, synthetic_task
from devicelab.methods.fed_ua.loss import codeword_loss, codeword_scores
from devicelab.methods.fed_ua.model import TDNN, CodewordModel, ModelConfig, build_model
from devicelab.methods.fed_ua.privacy import codeword_recovery, wire_problems

__all__ = [
    "BCHCode",
    "CodewordModel",
    "FedAwS",
    "FedUA",
    "FedUAConfig",
    "ModelConfig",
    "NaiveFedAvg",
    "PositiveOnlyFedAvg",
    "PrivacyAuditError",
    "SpeakerTask",
    "TDNN",
    "bch_codeword",
    "build_model",
    "codeword_loss",
    "codeword_recovery",
    "codeword_scores",
    "load_vox_task",
    "random_codeword",
    "secure_random_codeword",
    "synthetic_task",
    "warmup_threshold",
    "wire_problems",
]
