"""FedFD / FedFD-A: federated feature diversification with global BatchNorm statistics and the instance
feature adapter (Yang et al., ECCV 2024, arXiv 2407.08245), with the FedAvg, FedProx, FedBN and FedSR
baselines as pure federated algorithms."""

from devicelab.methods.fed_dg.algorithms import FedBN, FedFD, FedProx, FedSR
from devicelab.methods.fed_dg.bn import FedFDBatchNorm2d, InstanceFeatureAdapter, bn_mode, global_statistics
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.data import LodoSplit, domain_source
from devicelab.methods.fed_dg.recipe import lodo_stage, make_algorithm, run_one

__all__ = [
    "FedBN",
    "FedDGConfig",
    "FedFD",
    "FedFDBatchNorm2d",
    "FedProx",
    "FedSR",
    "InstanceFeatureAdapter",
    "LodoSplit",
    "bn_mode",
    "domain_source",
    "global_statistics",
    "lodo_stage",
    "make_algorithm",
    "run_one",
]
