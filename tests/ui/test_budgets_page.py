"""
The Vendor budgets page, end to end: a real ``airflow api-server`` (SQLite, simple auth manager)
loads the provider's plugin; a hook drives traffic against the Bridgit sandbox as a task would
(including a 429 that starts a long shared pause); the page is opened in headless Chromium and its
numbers are checked against what the vendor saw; a user who may not read connections gets 403.
The screenshot the README shows is saved to ``docs/budgets-page.png`` (only the page, no secret).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from airflow_provider_bridge.exceptions import BridgeRateLimitError
from tests.ui.servers import CHROMIUM, Browser

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "budgets-page.png"

pytestmark = pytest.mark.airflow


@pytest.fixture
def traffic(api_server, ui_state_file, bridgit, monkeypatch):
    """Requests through a hook as the task ``budget_demo.load_projects``; the last one gets a 429."""
    from airflow_provider_bridge.activity import flush_all
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", f"sqlite:///{ui_state_file}")
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(account_id=1, rate_limits=[[20, 1], [600, 3600]], max_retry_wait=2),
    )
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "budget_demo")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "load_projects")
    hook = BridgitBenchHook()
    for i in range(5):
        hook.create_entity("projects", {"name": f"Budget {i}"})
    list(hook.list_entities("projects"))
    bridgit.add_fault("status", status=429, retry_after=300, method="GET", path="/Projects")
    with pytest.raises(BridgeRateLimitError):
        list(hook.list_entities("projects"))  # a 5-minute pause: longer than max_retry_wait
    flush_all()
    stored = hook.credential_store.load() or {}
    yield {
        "requests": bridgit.stats()["accepted"] + bridgit.counter("throttled_429"),
        "secrets": [stored["access_token"], stored["refresh_token"], "sandbox-password"],
    }
    from airflow_provider_bridge.state.backend import PAUSE_NAMESPACE

    hook.state_backend.delete(PAUSE_NAMESPACE, hook.account_key)  # the other UI tests use this account


def test_a_user_who_may_not_read_connections_gets_403(api_server):
    url = f"{api_server.url}/bridge-budgets/api/status"
    assert requests.get(url, timeout=30).status_code in (401, 403)
    viewer = {"Authorization": f"Bearer {api_server.token('viewer')}"}
    assert requests.get(url, headers=viewer, timeout=30).status_code == 403
    assert requests.get(f"{api_server.url}/bridge-budgets/", headers=viewer, timeout=30).status_code == 403
    admin = {"Authorization": f"Bearer {api_server.token('admin')}"}
    assert requests.get(url, headers=admin, timeout=30).status_code == 200


def test_the_plugin_is_listed_with_its_menu_entry(api_server):
    admin = {"Authorization": f"Bearer {api_server.token('admin')}"}
    plugins = requests.get(f"{api_server.url}/api/v2/plugins", headers=admin, timeout=30).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "bridge_budgets")
    assert ours["external_views"][0]["href"] == "/bridge-budgets/"
    assert ours["external_views"][0]["category"] == "browse"


def test_the_page_shows_the_budget_pause_and_spenders_in_a_browser(api_server, traffic, tmp_path):
    admin = api_server.token("admin")
    data = requests.get(
        f"{api_server.url}/bridge-budgets/api/status",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    ).json()
    account = next(a for a in data["accounts"] if a["vendor"] == "bridgit_bench")
    activity = account["activity"]
    assert activity["conn_ids"] == ["bridgit_bench_default"]
    assert activity["requests_last_hour"] == traffic["requests"]  # every request the vendor saw
    assert activity["top_callers"][0] == {
        "caller": "budget_demo.load_projects",
        "requests": traffic["requests"],
    }
    assert "HTTP 429" in activity["last_429"]["message"]
    assert account["pause_seconds"] > 250
    hourly = next(w for w in account["windows"] if w["limit"] == 600)
    assert hourly["used"] == traffic["requests"]  # every request sent counts, the refused one too
    assert account["credentials"][0]["kind"] == "access token"
    for secret in traffic["secrets"]:
        assert secret not in json.dumps(data)

    if CHROMIUM is None:
        pytest.skip(
            "headless Chromium is not installed (Debian package 'chromium'; scripts/test.sh installs it "
            "where apt-get and root are available): the page's rendering was not checked in a browser"
        )
    browser = Browser(tmp_path / "chromium-profile")
    try:
        browser.open(f"{api_server.url}/bridge-budgets/", cookies={"_token": admin})
        section = '[data-account*="bridgit_bench"]'
        assert browser.text(f"{section} .conn-ids") == ["bridgit_bench_default"]
        assert browser.text(f"{section} .requests-last-hour") == [str(traffic["requests"])]
        used = browser.text(f'{section} tr.window[data-limit="600"] td.used')
        assert used == [str(hourly["used"])]
        assert browser.text(f'{section} tr.window[data-limit="600"] td.remaining') == [
            str(600 - hourly["used"])
        ]
        pause = browser.text(f"{section} .pause")
        assert pause and "429 pause active" in pause[0]
        assert "budget_demo.load_projects" in browser.text(f"{section} tr.caller td")[0]
        assert browser.text(f"{section} .last_429")[0].startswith("Last 429:")
        bars = browser.call(
            "Runtime.evaluate",
            expression=f"document.querySelectorAll('{section} svg.chart rect').length",
            returnByValue=True,
        )["result"]["value"]
        assert bars == 60  # one bar per minute of the last hour
        dom = browser.dom()
        for secret in traffic["secrets"]:
            assert secret not in dom
        browser.screenshot(tmp_path / "budgets-page.png")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes((tmp_path / "budgets-page.png").read_bytes())
    finally:
        browser.close()
    assert (tmp_path / "budgets-page.png").stat().st_size > 10_000
