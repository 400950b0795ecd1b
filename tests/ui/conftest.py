"""One real ``airflow api-server`` for the UI tests (package-scoped: started once)."""

from __future__ import annotations

import pytest

from tests.ui.servers import ApiServer


@pytest.fixture(scope="package")
def ui_state_file(tmp_path_factory):
    """The shared-state file the API server and the tests' hooks use."""
    return tmp_path_factory.mktemp("ui-state") / "bridge_state.sqlite"


@pytest.fixture(scope="package")
def api_server(tmp_path_factory, ui_state_file):
    """``airflow api-server`` with the provider's plugin, the connection Test enabled."""
    server = ApiServer(
        tmp_path_factory.mktemp("api-server-home"),
        {
            "AIRFLOW__BRIDGE__STATE_BACKEND": f"sqlite:///{ui_state_file}",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        },
    )
    server.start()
    yield server
    server.stop()
