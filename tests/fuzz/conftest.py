"""The fuzz suite's loopback vendor, one per test."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import FuzzServer


@pytest.fixture
def server():
    stub = FuzzServer()
    yield stub
    stub.close()
