"""Fixtures of the tests in this folder."""

from tests.torch_threads import _torch_threads  # noqa: F401  (autouse: two torch threads per test)
