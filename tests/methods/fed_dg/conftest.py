import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Client steps run with one thread (as in the engines); restored afterwards for other test modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
