"""Fixtures of the server suites."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Tests share 2 cores with the live server in the same process: more torch threads than free
    cores makes training many times slower, so torch tests run with one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
