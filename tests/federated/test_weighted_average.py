"""FedAvg arithmetic: hand-computed mean, order independence, renormalisation over the replies given."""

import numpy as np
import pytest

from devicelab.federated import ClientReply, weighted_average
from devicelab.federated.algo import FederatedRunError


def replies():
    rng = np.random.default_rng(1)
    return [
        ClientReply({"w": rng.normal(size=(4,)).astype(np.float32)}, n, pid=i)
        for i, n in enumerate((10, 30, 60))
    ]


def test_hand_computed():
    r = replies()
    out = weighted_average({"w": np.zeros(4, np.float32), "kept": np.ones(2)}, r)
    expected = (
        10 * r[0].arrays["w"].astype(np.float64) + 30 * r[1].arrays["w"] + 60 * r[2].arrays["w"]
    ) / 100
    np.testing.assert_allclose(out["w"], expected, rtol=1e-6)
    assert out["w"].dtype == np.float32
    np.testing.assert_array_equal(out["kept"], 1.0)  # keys outside the replies keep their global value


def test_order_independent():
    r = replies()
    a = weighted_average({}, r)["w"]
    b = weighted_average({}, r[::-1])["w"]
    np.testing.assert_allclose(a, b, atol=1e-7, rtol=0)


def test_renormalises_when_a_reply_is_dropped():
    r = replies()
    out = weighted_average({}, [r[0], r[2]])["w"]
    np.testing.assert_allclose(out, (10 * r[0].arrays["w"] + 60 * r[2].arrays["w"]) / 70, rtol=1e-6)


def test_errors():
    with pytest.raises(FederatedRunError, match="no replies"):
        weighted_average({}, [])
    with pytest.raises(FederatedRunError, match="no examples"):
        weighted_average({}, [ClientReply({"w": np.zeros(1)}, 0)])
