"""
pytest fixtures for testing DAGs against the sandbox. Opt-in, so that installing the provider
(in a production image, say) adds nothing to other pytest runs: in your ``conftest.py``,
``pytest_plugins = ["airflow_provider_bridge.sandbox.pytest_plugin"]``, or
``pytest -p airflow_provider_bridge.sandbox.pytest_plugin``.

* ``bridge_sandbox``: one sandbox process for the whole session (all vendors).
* ``bridgit_sandbox``: the Bridgit emulator, reset before the test.
* ``servicebridge_sandbox``: the ServiceBridge emulator, reset before the test.
* ``third_party_manager_sandbox``: the Third-Party Manager emulator, reset before the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_bridge.sandbox.testing import SandboxProcess, VendorSandbox

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def bridge_sandbox() -> Iterator[SandboxProcess]:
    """A running sandbox serving every vendor, for the whole test session."""
    with SandboxProcess() as sandbox:
        yield sandbox


@pytest.fixture
def bridgit_sandbox(bridge_sandbox: SandboxProcess) -> VendorSandbox:
    """The Bridgit Bench emulator, reset to its defaults."""
    vendor = bridge_sandbox.vendor("bridgit_bench")
    vendor.reset()
    return vendor


@pytest.fixture
def servicebridge_sandbox(bridge_sandbox: SandboxProcess) -> VendorSandbox:
    """The ServiceBridge emulator, reset to its defaults."""
    vendor = bridge_sandbox.vendor("servicebridge")
    vendor.reset()
    return vendor


@pytest.fixture
def third_party_manager_sandbox(bridge_sandbox: SandboxProcess) -> VendorSandbox:
    """The Third-Party Manager emulator, reset to its defaults."""
    vendor = bridge_sandbox.vendor("third_party_manager")
    vendor.reset()
    return vendor
