"""
What the server backends (PostgreSQL, Redis) share: the Airflow connection that names the server,
a client created lazily once per process (never carried across ``fork``), errors that name the
backend and the conn id, and locks as leases kept alive by a heartbeat.

A lease lock is a record on the server with a holder and an expiry. The holder extends it every
third of the lease while it works; a holder that dies (SIGKILL, pod eviction) stops extending, so
the others wait at most one lease. Each acquisition also gets a *fence*, a number that grows with
every new holder; what is written under a lock is written with compare-and-set on the record's
version, so a holder whose lease ran out cannot overwrite what a newer holder wrote.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeStateError
from airflow_provider_bridge.state.backend import StateBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk import Connection

log = logging.getLogger(__name__)


class RemoteStateBackend(StateBackend):
    """
    Shared state on a server, reached through an Airflow connection.

    :param conn_id: the Airflow connection to the server.
    :param namespace: ``[bridge] state_namespace`` (schema or key prefix).
    :param lock_lease: seconds a lock outlives a holder that stopped extending it.
    """

    shared_across_hosts = True
    #: ``postgres`` / ``redis``: the scheme in ``[bridge] state_backend``
    scheme: ClassVar[str]
    #: Airflow connection types accepted for the server
    conn_types: ClassVar[tuple[str, ...]]
    #: seconds between two clean-ups of expired records, per process
    cleanup_every: ClassVar[float] = 300.0

    def __init__(self, conn_id: str, namespace: str, *, lock_lease: float = 15.0) -> None:
        self.conn_id = conn_id
        self.namespace = namespace
        self.lock_lease = lock_lease
        self.description = f"{self.scheme}://{conn_id}"
        self._client: Any = None
        self._pid: int | None = None
        self._guard = threading.Lock()
        self._next_cleanup = 0.0

    # -- the connection and the client ------------------------------------------------------
    def airflow_connection(self) -> Connection:
        """The Airflow connection to the server, checked for its type."""
        from airflow.providers.common.compat.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception as exc:
            raise BridgeConfigError(
                f"[bridge] state_backend {self.description}: the Airflow connection {self.conn_id!r} "
                f"could not be read ({type(exc).__name__}); create a connection of type "
                f"{self.conn_types[0]!r} with that id"
            ) from None
        if conn.conn_type not in self.conn_types:
            raise BridgeConfigError(
                f"[bridge] state_backend {self.description}: connection {self.conn_id!r} has type "
                f"{conn.conn_type!r}; expected {' or '.join(repr(t) for t in self.conn_types)}"
            )
        return conn

    @abc.abstractmethod
    def _connect(self, conn: Connection) -> Any:
        """Build this process's client (pool) for the server; must not talk to it yet."""

    @abc.abstractmethod
    def _setup(self, client: Any) -> None:
        """Create what the backend needs on the server (idempotent; once per process)."""

    @abc.abstractmethod
    def _close(self, client: Any) -> None:
        """Close a client (best effort)."""

    @abc.abstractmethod
    def _is_server_error(self, exc: BaseException) -> bool:
        """True for the driver's errors (unreachable, refused, missing table...)."""

    def client(self) -> Any:
        """This process's client, created on first use (and again after a fork)."""
        pid = os.getpid()
        with self._guard:
            if self._client is None or self._pid != pid:
                client = self._connect(self.airflow_connection())
                try:
                    self._setup(client)
                except Exception as exc:
                    self._close(client)
                    raise self._state_error(exc, "could not prepare the server") from None
                self._client, self._pid = client, pid
            return self._client

    def _state_error(self, exc: BaseException, doing: str) -> BridgeStateError | BridgeConfigError:
        if isinstance(exc, BridgeStateError | BridgeConfigError):
            return exc
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        return BridgeStateError(
            f"[bridge] state_backend {self.description}: {doing}: {type(exc).__name__}: {reason}. "
            "Check the server and the Airflow connection (python -m airflow_provider_bridge.state check); "
            "the provider does not fall back to per-host state."
        )

    def run(self, doing: str, operation: Callable[[Any], Any]) -> Any:
        """
        Run ``operation(client)``; a broken pooled connection (e.g. after a server restart) is
        retried once on a fresh one, any other failure becomes a :class:`BridgeStateError`.
        """
        for attempt in (1, 2):
            try:
                return operation(self.client())
            except (BridgeStateError, BridgeConfigError):
                raise
            except Exception as exc:
                if not self._is_server_error(exc):
                    raise
                if attempt == 2 or not self._retryable(exc):
                    raise self._state_error(exc, doing) from None
                log.debug("State backend %s: retrying after %s", self.description, type(exc).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retryable(self, exc: BaseException) -> bool:
        """A failure worth one more try on a fresh connection (a stale pooled one)."""
        return True

    def maybe_cleanup(self) -> None:
        """Delete expired records now and then (a no-op where the server expires them itself)."""
        now = time.monotonic()
        if now >= self._next_cleanup:
            self._next_cleanup = now + self.cleanup_every
            self.cleanup()

    def cleanup(self) -> int:
        """Delete expired records; return how many went."""
        return 0

    # -- lease locks ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _try_lock(self, name: str, holder: str, lease: float) -> int | None:
        """Take the lease if free (or expired); return its fence, or None when held."""

    @abc.abstractmethod
    def _extend_lock(self, name: str, holder: str, lease: float) -> bool:
        """Extend our lease; False when it was lost (expired and taken)."""

    @abc.abstractmethod
    def _unlock(self, name: str, holder: str) -> None:
        """Release our lease (nothing happens when it is no longer ours)."""

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + timeout
        delay = 0.005
        while self._try_lock(name, holder, self.lock_lease) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BridgeStateError(
                    f"[bridge] state_backend {self.description}: timed out after {timeout:.0f}s waiting "
                    f"for the shared lock {name!r} (a holder that died releases it within "
                    f"[bridge] lock_lease = {self.lock_lease:g}s)"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(name, holder, stop), name="bridge-lock-lease", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            try:
                self._unlock(name, holder)
            except BridgeStateError as exc:  # the lease runs out by itself
                log.warning("Could not release the shared lock %r: %s", name, exc)

    def _heartbeat(self, name: str, holder: str, stop: threading.Event) -> None:
        while not stop.wait(self.lock_lease / 3):
            try:
                if not self._extend_lock(name, holder, self.lock_lease):
                    log.warning(
                        "The lease of the shared lock %r ran out while held; what this process "
                        "writes under it is checked against newer writes (fencing)",
                        name,
                    )
                    return
            except BridgeStateError as exc:
                log.warning("Could not extend the lease of the shared lock %r: %s", name, exc)


__all__ = ["RemoteStateBackend"]
