"""
What the hooks do with each vendor's budget, as metrics through Airflow's own metrics layer
(``Stats``: StatsD, Datadog or OpenTelemetry, as the deployment configures ``[metrics]``).

Every name starts with ``bridge.<conn_id>.`` (plain StatsD drops tags, so the connection is in the
name, as Airflow's own per-DAG names do); tag-aware backends also get the tags ``conn_id`` and
``vendor`` (and ``outcome``, ``kind``, ``resolution``, ``window`` where the name ends with one):

================================================  =========  ==========================================
name                                              type       what
================================================  =========  ==========================================
``requests.<outcome>``                            counter    every HTTP attempt: ``success``,
                                                             ``client_error``, ``server_error``,
                                                             ``throttled``, ``transport_error``
``http_429``                                      counter    answers with status 429
``pause_started``, ``pause_seconds``              counter,   shared pauses this process started after a
                                                  timer      429 (or 503 + Retry-After), and their length
``slot_wait``                                     timer      time spent waiting for a rate-limit slot
``refused_locally``                               counter    calls refused because the wait would exceed
                                                             ``max_retry_wait`` (``BridgeRateLimitError``)
``credentials.<kind>``                            counter    ``sign_in``, ``refresh``, ``reauth`` (a
                                                             credential the vendor refused, renewed)
``outcome_unknown.<resolution>``                  counter    a create with an unknown outcome, and how it
                                                             ended: ``found``, ``resent``, ``conflict``
                                                             (the vendor's 409 named it), ``raised``
``budget_remaining.<limit>_per_<seconds>s``       gauge      requests left in each rate window, across
                                                             all processes (sent at most every 10 s
                                                             per process)
``slot_wait.<class>``                             timer      the same per priority class, when the
                                                             connection declares ``budget_classes``
``refused_locally.<class>``                       counter    the same per priority class
``reserve_remaining.<window>.<class>``            gauge      what is left of the hook's class reserve
                                                             in each window (with ``budget_classes``)
================================================  =========  ==========================================

Emitting costs a few microseconds per request when metrics are off (Airflow's no-op logger) and one
UDP datagram per metric when StatsD is on. Nothing here ever raises into the request path.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_bridge.activity import ActivityRecorder
    from airflow_provider_bridge.retry_policy import Outcome
    from airflow_provider_bridge.state.limiter import RateLimiter

log = logging.getLogger(__name__)

#: seconds between two budget gauges of one connection in one process
BUDGET_INTERVAL = 10.0
#: how each retry-policy outcome is reported
OUTCOME_LABELS = {
    "ok": "success",
    "client_error": "client_error",
    "auth_expired": "client_error",
    "config_error": "client_error",
    "server_error": "server_error",
    "throttled": "throttled",
    "not_sent": "transport_error",
    "read_timeout": "transport_error",
    "dropped": "transport_error",
}


def _stats() -> Any:
    """Airflow's ``Stats`` (the Task SDK's from Airflow 3.1 on; the core one before)."""
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # pragma: no cover - older Airflow
        from airflow.stats import Stats  # type: ignore[no-redef]
    return Stats


def _metrics_on() -> bool:
    """
    Whether the deployment sends metrics (``[metrics] statsd_on`` or ``otel_on``), read from
    Airflow's configuration: when off, nothing is built per request.
    """
    try:
        from airflow.providers.common.compat.sdk import conf

        return any(conf.getboolean("metrics", name, fallback=False) for name in ("statsd_on", "otel_on"))
    except Exception:  # a configuration we cannot read: emit, Airflow's Stats decides
        return True


def _safe_name(text: str) -> str:
    """A name part StatsD and Airflow's validator accept (letters, digits, ``_ . -``)."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)[:100] or "_"


class HookMetrics:
    """
    The metrics of one connection, as its hook emits them.

    :param conn_id: the Airflow connection id.
    :param vendor: the connection type.
    """

    def __init__(self, conn_id: str, vendor: str) -> None:
        self.prefix = f"bridge.{_safe_name(conn_id)}"
        self.tags = {"conn_id": conn_id, "vendor": vendor}
        self._budget_sent = 0.0
        self._stats: Any = None
        self._on = True
        #: the priority class of the hook's requests, when its connection declares classes
        self.budget_class: str | None = None

    # -- emitting ----------------------------------------------------------------------------
    def _emit(self, method: str, name: str, value: float | None = None, **tags: str) -> None:
        try:
            if self._stats is None:
                self._stats = _stats()
                self._on = _metrics_on()
            if not self._on:
                return
            stat = f"{self.prefix}.{name}"
            all_tags = {**self.tags, **tags}
            if method == "incr":
                self._stats.incr(stat, tags=all_tags)
            elif method == "timing":
                self._stats.timing(stat, value, tags=all_tags)
            else:
                self._stats.gauge(stat, value, tags=all_tags)
        except Exception:  # metrics must never break a call
            log.debug("Could not emit metric %s", name, exc_info=True)

    # -- what the request path reports -------------------------------------------------------
    def request(self, outcome: str, status: int | None) -> None:
        """One HTTP attempt and how it ended (a retry-policy outcome value)."""
        label = OUTCOME_LABELS.get(outcome, "client_error")
        self._emit("incr", f"requests.{label}", outcome=label)
        if status == 429:
            self._emit("incr", "http_429")

    def pause_started(self, seconds: float) -> None:
        """This process paused every worker of the account for ``seconds`` after a 429."""
        self._emit("incr", "pause_started")
        self._emit("timing", "pause_seconds", seconds * 1000)

    def slot_wait(self, seconds: float) -> None:
        """Time one request waited for a rate-limit slot (and per priority class, with classes)."""
        self._emit("timing", "slot_wait", seconds * 1000)
        if self.budget_class:
            name = _safe_name(self.budget_class)
            self._emit("timing", f"slot_wait.{name}", seconds * 1000, budget_class=self.budget_class)

    def refused_locally(self) -> None:
        """A call refused because the wait for a slot would exceed ``max_retry_wait``."""
        self._emit("incr", "refused_locally")
        if self.budget_class:
            name = _safe_name(self.budget_class)
            self._emit("incr", f"refused_locally.{name}", budget_class=self.budget_class)

    def credentials(self, kind: str) -> None:
        """``sign_in``, ``refresh`` or ``reauth``."""
        self._emit("incr", f"credentials.{kind}", kind=kind)

    def outcome_unknown(self, resolution: str) -> None:
        """A create with an unknown outcome, and how it was resolved."""
        self._emit("incr", f"outcome_unknown.{resolution}", resolution=resolution)

    def budget(self, limiter: RateLimiter, *, now: Callable[[], float] = time.monotonic) -> None:
        """The remaining budget of each window (at most every :data:`BUDGET_INTERVAL` seconds)."""
        if now() - self._budget_sent < BUDGET_INTERVAL:
            return
        self._budget_sent = now()
        if self._stats is not None and not self._on:
            return  # metrics off: do not even read the windows
        try:
            usage = limiter.backend.window_usage()  # one read for the windows and the class reserves
            remaining = limiter.remaining(usage)
            reserved = limiter.class_remaining(usage) if self.budget_class else {}
        except Exception:
            log.debug("Could not read the rate windows' use", exc_info=True)
            return
        for (limit, seconds), left in remaining.items():
            window = f"{limit}_per_{seconds:g}s".replace(".", "_")
            self._emit("gauge", f"budget_remaining.{window}", left, window=window)
        klass = self.budget_class or ""
        for (limit, seconds), left in reserved.items():
            window = f"{limit}_per_{seconds:g}s".replace(".", "_")
            name = f"reserve_remaining.{window}.{_safe_name(klass)}"
            self._emit("gauge", name, left, window=window, budget_class=klass)


class Observer(Protocol):
    """What the transport reports about each attempt (metrics and the budgets page)."""

    def slot_waited(self, seconds: float) -> None: ...

    def refused_locally(self) -> None: ...

    def attempted(self, outcome: Outcome, status: int | None) -> None: ...

    def failed(self, text: str) -> None: ...

    def throttled(self, seconds: float, text: str) -> None: ...


class NoObserver:
    """Reports nothing."""

    def slot_waited(self, seconds: float) -> None:
        pass

    def refused_locally(self) -> None:
        pass

    def attempted(self, outcome: Outcome, status: int | None) -> None:
        pass

    def failed(self, text: str) -> None:
        pass

    def throttled(self, seconds: float, text: str) -> None:
        pass


class AttemptReporter:
    """
    Tells a connection's metrics and its account's activity record (the budgets page) what each
    attempt did: the transport's observer for a hook.
    """

    def __init__(
        self, metrics: HookMetrics, activity: ActivityRecorder, limiter: RateLimiter, caller: str
    ) -> None:
        self.metrics = metrics
        self.activity = activity
        self.limiter = limiter
        self.caller = caller

    def slot_waited(self, seconds: float) -> None:
        self.metrics.slot_wait(seconds)

    def refused_locally(self) -> None:
        self.metrics.refused_locally()

    def attempted(self, outcome: Outcome, status: int | None) -> None:
        self.metrics.request(outcome.value, status)
        self.metrics.budget(self.limiter)
        self.activity.request(self.caller)

    def failed(self, text: str) -> None:
        self.activity.event("last_error", text)

    def throttled(self, seconds: float, text: str) -> None:
        self.metrics.pause_started(seconds)
        self.activity.event("last_429", text)
