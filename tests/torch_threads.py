"""Two torch threads for every test of a folder that trains or runs models (its ``conftest.py`` imports
the fixture): a test spends the cores a CI machine has, and leaves torch's count as it found it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(before)
