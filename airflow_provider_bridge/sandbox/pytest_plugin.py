"""
pytest fixtures for testing DAGs against the sandbox. Opt-in, so that installing the provider
(in a production image, say) adds nothing to other pytest runs: in your ``conftest.py``,
``pytest_plugins = ["airflow_provider_bridge.sandbox.pytest_plugin"]``, or
``pytest -p airflow_provider_bridge.sandbox.pytest_plugin``.

* ``bridge_sandbox``: one sandbox process for the whole session (every vendor).
* ``<conn_type>_sandbox`` for each vendor (``bridgit_bench_sandbox``, ``servicebridge_sandbox``,
  ``third_party_manager_sandbox``): that vendor's emulator, reset before the test.
* ``bridgit_sandbox``: the same as ``bridgit_bench_sandbox``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_bridge.sandbox.testing import SandboxProcess, VendorSandbox
from airflow_provider_bridge.vendors import vendors

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def bridge_sandbox() -> Iterator[SandboxProcess]:
    """A running sandbox serving every vendor, for the whole test session."""
    with SandboxProcess() as sandbox:
        yield sandbox


def _vendor_fixture(conn_type: str, name: str) -> Any:
    def emulator(bridge_sandbox: SandboxProcess) -> VendorSandbox:
        vendor = bridge_sandbox.vendor(conn_type)
        vendor.reset()
        return vendor

    emulator.__doc__ = f"The {vendors()[conn_type].name} emulator, reset to its defaults."
    emulator.__name__ = name
    return pytest.fixture(name=name)(emulator)


for _conn_type in vendors():
    globals()[f"{_conn_type}_sandbox"] = _vendor_fixture(_conn_type, f"{_conn_type}_sandbox")
bridgit_sandbox = _vendor_fixture("bridgit_bench", "bridgit_sandbox")
