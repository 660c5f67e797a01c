"""FedFD / FedFD-A: federated feature diversification with global BatchNorm statistics and the instance
feature adapter (Yang et al., ECCV 2024, arXiv 2407.08245), with the FedAvg, FedProx, FedBN and FedSR
baselines as pure federated algorithms."""

from devicelab.methods.fed_dg.bn import FedFDBatchNorm2d, InstanceFeatureAdapter, bn_mode, global_statistics

__all__ = ["FedFDBatchNorm2d", "InstanceFeatureAdapter", "bn_mode", "global_statistics"]
