"""One torch thread for the tests of tiny models: on a shared 2-core machine a second OpenMP thread waits on a
busy core at every operation and makes them ~70x slower. Import `one_thread` into a test module to use it."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
