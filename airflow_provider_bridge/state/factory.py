"""
Which shared state backend a process uses: ``[bridge] state_backend`` (and ``state_namespace``,
``lock_lease``) turned into one backend per process, and the warning for a per-host backend under
a multi-host executor. Kept apart from :mod:`~airflow_provider_bridge.state.backend` (the base
classes and the per-host backends), which the server backends import: importing them from here
makes no cycle.
"""

from __future__ import annotations

import logging
import os
import threading

from airflow_provider_bridge.config import SECTION, default
from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.state.backend import (
    _NAMESPACE_RE,
    DEFAULT_LOCK_LEASE,
    DEFAULT_NAMESPACE,
    StateBackend,
)
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend
from airflow_provider_bridge.state.postgres_backend import PostgresStateBackend
from airflow_provider_bridge.state.redis_backend import RedisStateBackend
from airflow_provider_bridge.state.sqlite_backend import SQLiteStateBackend

log = logging.getLogger(__name__)

_BACKENDS: dict[tuple[int, str, str], StateBackend] = {}
_BACKENDS_GUARD = threading.Lock()


def _airflow_home() -> str:
    return os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")


def _option(name: str) -> str | None:
    from airflow.providers.common.compat.sdk import conf

    value = conf.get(SECTION, name, fallback=None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def configured_backend_spec() -> str:
    """The ``[bridge] state_backend`` setting (``sqlite`` when unset)."""
    return _option("state_backend") or default("state_backend")


def configured_namespace() -> str:
    """The ``[bridge] state_namespace`` setting, validated (``airflow_bridge`` when unset)."""
    namespace = _option("state_namespace") or DEFAULT_NAMESPACE
    if not _NAMESPACE_RE.match(namespace):
        raise BridgeConfigError(
            f"[bridge] state_namespace: expected lower-case letters, digits and underscores, starting "
            f"with a letter or underscore, at most 63 characters (a PostgreSQL schema name or Redis key "
            f"prefix), got {namespace!r}"
        )
    return namespace


def configured_lock_lease() -> float:
    """The ``[bridge] lock_lease`` setting in seconds (15 when unset)."""
    raw = _option("lock_lease")
    if raw is None:
        return DEFAULT_LOCK_LEASE
    try:
        lease = float(raw)
    except ValueError:
        lease = -1.0
    if not 1 <= lease <= 3600:
        raise BridgeConfigError(f"[bridge] lock_lease: expected seconds between 1 and 3600, got {raw!r}")
    return lease


_EXPECTED = (
    "expected 'sqlite' (default, one host), 'sqlite:///<path>', 'postgres://<airflow conn id>', "
    "'redis://<airflow conn id>' or 'memory'"
)


def get_state_backend(spec: str | None = None) -> StateBackend:
    """
    Return the state backend for ``spec`` (default: the configured one), one per process.

    Creating a server backend reads nothing yet: its Airflow connection is read, and the server
    reached, on first use (so this is safe to call on a triggerer's event loop).

    :param spec: ``sqlite``, ``sqlite:///<path>``, ``postgres://<conn id>``, ``redis://<conn id>``
        or ``memory``.
    :raises BridgeConfigError: naming ``[bridge] state_backend`` when the value is malformed.
    """
    spec = spec or configured_backend_spec()
    scheme, sep, rest = spec.partition("://")
    namespace = configured_namespace() if scheme in ("postgres", "postgresql", "redis") else ""
    cache_key = (os.getpid(), spec, namespace)
    with _BACKENDS_GUARD:
        if cache_key in _BACKENDS:
            return _BACKENDS[cache_key]
        backend: StateBackend
        if spec == "memory":
            backend = MemoryStateBackend()
        elif spec == "sqlite":
            backend = SQLiteStateBackend(os.path.join(_airflow_home(), "bridge_state.sqlite"))
        elif scheme == "sqlite" and sep and rest.startswith("/") and len(rest) > 1:
            # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path
            backend = SQLiteStateBackend(rest[1:])
        elif scheme in ("postgres", "postgresql", "redis") and sep:
            conn_id = rest.strip("/")
            if not conn_id or "/" in conn_id or "?" in conn_id:
                raise BridgeConfigError(
                    f"[bridge] state_backend: {spec!r} must name an Airflow connection id after "
                    f"'{scheme}://', e.g. '{scheme}://bridge_state'"
                )
            server = RedisStateBackend if scheme == "redis" else PostgresStateBackend
            backend = server(conn_id, namespace, lock_lease=configured_lock_lease())
        else:
            raise BridgeConfigError(f"[bridge] state_backend: unsupported value {spec!r}; {_EXPECTED}")
        _BACKENDS[cache_key] = backend
        return backend


#: executors that run tasks on other hosts than the one that queued them
_MULTI_HOST_EXECUTORS = (
    "CeleryExecutor",
    "KubernetesExecutor",
    "CeleryKubernetesExecutor",
    "LocalKubernetesExecutor",
    "EdgeExecutor",
    "BatchExecutor",
    "EcsExecutor",
    "LambdaExecutor",
)
_warned_per_host = False


def warn_if_per_host_on_multi_host_executor(backend: StateBackend) -> None:
    """
    Warn once per process when a per-host backend is used while the configured executor runs
    tasks on several hosts (each host would sign in, count and pause on its own).
    """
    global _warned_per_host
    if _warned_per_host or backend.shared_across_hosts or isinstance(backend, MemoryStateBackend):
        return
    _warned_per_host = True
    try:
        from airflow.providers.common.compat.sdk import conf

        executors = conf.get("core", "executor", fallback="") or ""
    except Exception:  # configuration unreadable: nothing to warn about
        return
    names = [part.split(":")[-1].rsplit(".", 1)[-1].strip() for part in executors.split(",")]
    multi = [name for name in names if name in _MULTI_HOST_EXECUTORS]
    if multi:
        log.warning(
            "[bridge] state_backend is %s, which is shared by the processes of one host only, but "
            "[core] executor runs tasks on several hosts (%s): each host will sign in, count rate "
            "limits and pause on its own. Set [bridge] state_backend = postgres://<conn id> or "
            "redis://<conn id> (see the README, 'Running on several hosts').",
            backend.description,
            ", ".join(multi),
        )


def forget_state_backends() -> None:
    """Drop this process's backends: the next :func:`get_state_backend` reads the settings again."""
    with _BACKENDS_GUARD:
        _BACKENDS.clear()
