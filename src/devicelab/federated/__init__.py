"""Flower glue shared by the federated methods: pure algorithm protocol, two engines, apps, deployment.

Importing this package first sets the Flower and Ray environment (:mod:`devicelab.federated.env`), so that
no later import of ``flwr`` or ``ray`` phones home or binds beyond loopback.
"""

from devicelab.federated import env as _env

_env.apply()

from devicelab.federated.algo import (  # noqa: E402
    ClientReply,
    FaultPlan,
    FedAlgorithm,
    RoundPlan,
    SimulatedDropout,
    sample_partitions,
    stream_rng,
    torch_generator,
    weighted_average,
)
from devicelab.federated.fedavg import LocalTraining, TorchFedAvg, load_arrays, model_arrays  # noqa: E402
from devicelab.federated.loop import run_loop  # noqa: E402
from devicelab.federated.rounds import FederatedConfig, RunResult  # noqa: E402

__all__ = [
    "ClientReply",
    "FaultPlan",
    "FedAlgorithm",
    "FederatedConfig",
    "LocalTraining",
    "RoundPlan",
    "RunResult",
    "SimulatedDropout",
    "TorchFedAvg",
    "load_arrays",
    "model_arrays",
    "run_loop",
    "sample_partitions",
    "stream_rng",
    "torch_generator",
    "weighted_average",
]
