"""fed-dg's run-time errors are one line naming the key and the choices; the plan covers every stage once."""

import pytest

from devicelab.cli import main
from devicelab.core.config import ConfigError, resolve_config
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.experiment import plan


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("held_out=[dom0, nope]", "held_out: unknown domain(s) nope; domains: dom0, dom1, dom2"),
        ("engine=ray", "engine='ray': expected one of 'loop', 'flower'"),
        ("baselines=[fedavg]", "baselines='fedavg': expected one of 'fedprox', 'fedbn', 'fedsr'"),
        ("rounds=many", "rounds='many': expected an integer"),
    ],
)
def test_bad_values_are_one_line_errors(capsys, override, message):
    assert main(["run", "fed-dg", "--profile", "smoke", override]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_plan_has_claim_methods_on_every_seed_and_baselines_on_theirs():
    cfg = resolve_config(FedDGConfig, "quick", {"held_out": ["b"]})
    names = [s.name for s in plan(cfg, ["a", "b"])]
    # the quick verdict run trains the claim methods only; the reported-only baselines run outside it
    assert names == [f"{m}-b-seed{s}" for s in (0, 1, 2) for m in ("fedavg", "fedfd")]
    assert (
        cfg.train_per_domain == 300
    )  # the spec's 300 images per domain: 10 local steps per round at batch 32
    cfg = resolve_config(
        FedDGConfig, "quick", {"held_out": ["b"], "baselines": ["fedprox", "fedbn", "fedsr"]}
    )
    names = [s.name for s in plan(cfg, ["a", "b"])]
    assert len(names) == 2 * 3 + 3 and "fedsr-b-seed0" in names and "fedsr-b-seed1" not in names
    with pytest.raises(ConfigError, match="unknown domain"):
        plan(resolve_config(FedDGConfig, "quick", {"held_out": ["c"]}), ["a", "b"])
