"""
The **Vendor budgets** page in the Airflow UI (an Airflow 3 plugin: a FastAPI app served by the
API server, linked from the UI's *Browse* menu).

For every vendor account that has used the shared state (on any backend: one host or several):
each rate window used and remaining now, a chart of requests per minute over the last hour
against the limit, any active 429 pause and when it ends, the session or token state and its
expiry (never a secret), the last 429 and the last error with their time, and the tasks that
spent the most of the budget in the last hour. ``GET /bridge-budgets/api/status`` returns the
same as JSON.

Access follows Airflow's auth manager: the page and the JSON need permission to read
connections (403 otherwise). Nothing here runs unless the page is opened.
"""

from __future__ import annotations

import html
import time
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

URL_PREFIX = "/bridge-budgets"


def _authorized() -> list[Any]:
    """Airflow's own check: the caller may read connections (the API server's auth manager)."""
    try:
        from airflow.api_fastapi.core_api.security import requires_access_connection
    except ImportError:  # pragma: no cover - not inside an Airflow API server
        return []
    return [Depends(requires_access_connection(method="GET"))]


def budgets() -> dict[str, Any]:
    """What the page shows, as plain data."""
    from airflow_provider_bridge.state.cli import collect_status
    from airflow_provider_bridge.state.factory import get_state_backend

    backend = get_state_backend()
    return {"backend": backend.description, "generated_at": time.time(), "accounts": collect_status(backend)}


app = FastAPI(title="Vendor budgets", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/api/status", dependencies=_authorized())
def status() -> dict[str, Any]:
    """Every account's budget, pause, credentials and recent activity (JSON)."""
    return budgets()


@app.get("/", response_class=HTMLResponse, dependencies=_authorized())
def page() -> HTMLResponse:
    """The page (server-rendered; refreshes itself every 10 s)."""
    return HTMLResponse(render(budgets()))


# -- rendering ---------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #1b1f24; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 0 0 4px; }
.account { border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
.meta { color: #57606a; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
td, th { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pause { color: #b35900; font-weight: 600; } .ok { color: #1a7f37; } .error { color: #cf222e; }
svg { background: #f6f8fa; border-radius: 4px; }
"""


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "never"


def _configured(limit: int | None, counted: float, configured: list[list[float]]) -> float:
    """A window's duration as configured (the backend counts it widened by ``rate_limit_margin``);
    ``limit`` None: any window of that duration (a class's reserve in it)."""
    matches = [float(s) for lim, s in configured if limit in (None, int(lim)) and 0 <= counted - float(s) < 1]
    return matches[0] if matches else counted


def _per_minute_limit(configured: list[list[float]]) -> float | None:
    """The tightest window as a sustained rate per minute (what the chart's line shows)."""
    rates = [float(limit) * 60.0 / float(seconds) for limit, seconds in configured if float(seconds) > 0]
    return min(rates) if rates else None


def _chart(per_minute: list[dict[str, Any]], limit: float | None) -> str:
    width, height, bar = 600, 120, 10
    peak = max([p["requests"] for p in per_minute] + [limit or 0, 1])
    bars = []
    for i, point in enumerate(per_minute):
        h = round(point["requests"] / peak * (height - 10))
        label = f"{time.strftime('%H:%M', time.gmtime(point['minute']))}: {point['requests']} request(s)"
        bars.append(
            f'<rect x="{i * bar}" y="{height - h}" width="{bar - 2}" height="{h}" fill="#0969da">'
            f"<title>{label}</title></rect>"
        )
    line = ""
    if limit is not None:
        y = height - round(limit / peak * (height - 10))
        line = (
            f'<line x1="0" y1="{y}" x2="{width}" y2="{y}" stroke="#cf222e" stroke-dasharray="4 3"/>'
            f'<text x="4" y="{max(10, y - 3)}" font-size="10" fill="#cf222e">'
            f"sustained limit {limit:.0f}/min</text>"
        )
    return (
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="requests per minute, last hour">{"".join(bars)}{line}</svg>'
    )


def _account(entry: dict[str, Any]) -> str:
    e = html.escape
    activity = entry.get("activity") or {}
    conn_ids = ", ".join(activity.get("conn_ids") or []) or "?"
    configured = activity.get("configured_windows") or []
    rows = (
        "".join(
            f'<tr class="window" data-limit="{w["limit"]}" data-seconds="{w["seconds"]:g}">'
            f"<td>{w['limit']} per {_configured(w['limit'], w['seconds'], configured):g} s</td>"
            f'<td class="num used">{w["used"]}</td><td class="num remaining">{w["remaining"]}</td></tr>'
            for w in entry["windows"]
        )
        or '<tr><td colspan="3">no request in any window now</td></tr>'
    )
    classes = "".join(
        f'<tr class="budget-class" data-class="{e(c["class"])}"><td>{e(c["class"])}: {c["reserve"]} per '
        f"{_configured(None, c['seconds'], configured):g} s</td>"
        f'<td class="num used">{c["used"]}</td><td class="num remaining">{c["remaining"]}</td></tr>'
        for c in entry.get("classes") or []
    )
    if classes:
        classes = (
            "<table><tr><th>priority class (its reserve)</th><th>used now</th><th>remaining</th></tr>"
            f"{classes}</table>"
        )
    learned = "".join(
        f'<p class="learned" data-limit="{x["limit"]}">Learned limit (adaptive_rate): {x["limit"]} per '
        f"{_configured(None, x['seconds'], configured):g} s (ceiling {x['ceiling']}; last 429 "
        f"{'never' if x['last_429_seconds_ago'] is None else str(x['last_429_seconds_ago']) + ' s ago'})</p>"
        for x in entry.get("learned") or []
    )
    pause = (
        f'<p class="pause" data-seconds="{entry["pause_seconds"]}">429 pause active: '
        f"{entry['pause_seconds']:.1f} s left (ends {_when(time.time() + entry['pause_seconds'])})</p>"
        if entry["pause_seconds"]
        else '<p class="ok pause-none">No 429 pause</p>'
    )
    from airflow_provider_bridge.state.cli import describe_credentials

    creds = describe_credentials(entry["credentials"], "this API server")
    events = []
    for kind, label in (("last_429", "Last 429"), ("last_error", "Last error")):
        event = activity.get(kind)
        text = (
            f"{_when(event['at'])} — {e(event['conn_id'])}, {e(event['caller'])}: {e(event['message'])}"
            if event
            else "none in the last hours"
        )
        events.append(f'<p class="{kind}"><b>{label}:</b> {text}</p>')
    top = (
        "".join(
            f'<tr class="caller"><td>{e(t["caller"])}</td><td class="num">{t["requests"]}</td></tr>'
            for t in activity.get("top_callers") or []
        )
        or '<tr><td colspan="2">no request recorded in the last hour</td></tr>'
    )
    limit = _per_minute_limit(configured or [[w["limit"], w["seconds"]] for w in entry["windows"]])
    chart = _chart(activity.get("per_minute") or [], limit) if activity else ""
    return f"""
<section class="account" data-account="{e(entry["account"])}">
  <h2>{e(entry["vendor"])} — {e(entry["base_url"])}</h2>
  <div class="meta">login {e(entry["login"] or "-")}
   · connection(s) <span class="conn-ids">{e(conn_ids)}</span>
   · <span class="requests-last-hour">{activity.get("requests_last_hour", 0)}</span>
   request(s) in the last hour</div>
  <table><tr><th>window</th><th>used now</th><th>remaining</th></tr>{rows}</table>
  {classes}
  {learned}
  {pause}
  <p class="credentials"><b>Credentials:</b> {e("; ".join(creds))}</p>
  {"".join(events)}
  {chart}
  <table><tr><th>task (last hour)</th><th>requests</th></tr>{top}</table>
</section>"""


def render(data: dict[str, Any]) -> str:
    """The page's HTML for :func:`budgets` data."""
    accounts = "".join(_account(a) for a in data["accounts"]) or (
        "<p>No connection has used the shared state yet.</p>"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>Vendor budgets</title><style>{_STYLE}</style></head>
<body><h1>Vendor budgets</h1>
<div class="meta">State backend: {html.escape(data["backend"])} · {_when(data["generated_at"])}
 · refreshes every 10 s</div>
{accounts}
</body></html>"""


class BridgeBudgetsPlugin(AirflowPlugin):
    """The Vendor budgets page, under the UI's Browse menu."""

    name = "bridge_budgets"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Vendor budgets"}]
    external_views = [
        {
            "name": "Vendor budgets",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "bridge-budgets",
        }
    ]
