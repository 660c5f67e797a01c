"""fed-dg under both engines (smoke: 3 domains, 2 FedFD rounds + 1 IFA round): Flower and loop agree."""

import numpy as np

from devicelab.core.config import resolve_config
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.data import domain_source
from devicelab.methods.fed_dg.recipe import run_one


def test_flower_and_loop_agree_across_the_stage_switch():
    cfg = resolve_config(FedDGConfig, "smoke")
    source, _ = domain_source(cfg, None)
    loop = run_one("fedfd", cfg, source, "dom0", 0, engine="loop", rounds=2, ifa_rounds=1)
    flower = run_one("fedfd", cfg, source, "dom0", 0, engine="flower", rounds=2, ifa_rounds=1)
    a, b = loop["_arrays"], flower["_arrays"]
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-6, rtol=1e-5, err_msg=k)
    assert loop["failures"] == flower["failures"] == {"failed": 0, "missing": 0, "rejected": 0}
    for mode in ("global", "ifa", "instance", "testbatch"):
        assert loop[mode] == flower[mode]
    assert loop["curve"] == flower["curve"]


def test_deployable_task_builds_server_and_client_sides():
    from devicelab.federated import run_loop
    from devicelab.federated.tasks import federated_config
    from devicelab.methods.fed_dg.federated_task import make_task

    run_config = {
        "profile": "smoke",
        "held-out": "dom2",
        "num-partitions": 2,
        "num-rounds": 2,
        "overrides": '{"rounds": 1, "ifa_rounds": 1}',
    }
    server_algo, _ = make_task(run_config, None)
    client_algo, data_fn = make_task(run_config, {"partition-id": 0})
    assert (
        server_algo.eval_data is not None and client_algo.eval_data is None
    )  # only the server holds the test set
    assert [data_fn(p).domain for p in (0, 1)] == ["dom0", "dom1"]
    cfg = federated_config(run_config, server_algo)
    result = run_loop(server_algo, data_fn, cfg)
    assert [r.stage for r in result.rounds] == ["train", "ifa"] and "acc-ifa" in result.rounds[-1].server
