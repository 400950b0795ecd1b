"""
Credentials shared by every process that uses a connection (session keys, access and refresh tokens).

A :class:`CredentialStore` keeps one JSON record per credential key in the state backend,
encrypted with Airflow's Fernet key when one is configured, behind a lock that spans processes.
The discipline that makes single-use refresh tokens and one-session-per-account vendors safe:

1. read without the lock; use the record if it is still good;
2. otherwise take the lock and **re-read** — another process may already have refreshed;
3. refresh or sign in only if the stored record is still the stale one;
4. save the new record (with a rotated refresh token) *before* anyone uses the new access token.

Every secret read from or written to the store is registered with Airflow's secrets masker.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, TypedDict, cast

from airflow_provider_bridge.exceptions import BridgeConfigError

if TYPE_CHECKING:
    import contextlib

    from airflow_provider_bridge.state.backend import StateBackend

log = logging.getLogger(__name__)

NAMESPACE = "credentials"
#: fields of a credential record that are secrets (masked in every log)
SECRET_FIELDS = frozenset({"access_token", "refresh_token", "session_key", "id_token"})


def mask(value: Any) -> None:
    """Register a runtime secret with Airflow's secrets masker (no-op for empty values)."""
    if not value or not isinstance(value, str):
        return
    from airflow.providers.common.compat.sdk import mask_secret  # common-compat >= 1.22

    mask_secret(value)


_warned_plaintext = False


def _configured_key() -> str:
    """``[core] fernet_key`` as configured ('' when unset; some Airflow versions then refuse to
    build even the null Fernet, which must not read as a malformed key)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - a Task SDK without core
        return "unknown"
    return str(conf.get("core", "fernet_key", fallback="") or "").strip()


def _fernet() -> Any | None:
    """
    Airflow's Fernet when ``[core] fernet_key`` is set; None (with one warning) when it is not.

    :raises BridgeConfigError: when a key is set but unusable: credentials are never written in
        plain text because of a typo in the key.
    """
    try:
        from airflow.sdk.crypto import get_fernet
    except ImportError:  # pragma: no cover - older SDKs
        from airflow.models.crypto import get_fernet
    global _warned_plaintext
    try:
        fernet = get_fernet() if _configured_key() else None
    except Exception as exc:
        raise BridgeConfigError(
            f"[core] fernet_key is set but is not a valid Fernet key ({type(exc).__name__}); shared "
            "credentials are not stored in plain text because of it. Set a valid key (python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') in every "
            "Airflow component, or unset it"
        ) from None
    if fernet is not None and getattr(fernet, "is_encrypted", False):
        return fernet
    if not _warned_plaintext:
        log.warning(
            "Shared credentials are stored unencrypted: no [core] fernet_key is configured. Anyone who "
            "can read the state backend can read the vendor tokens; set a Fernet key in every component"
        )
        _warned_plaintext = True
    return None


class CredentialRecord(TypedDict, total=False):
    """
    One account's shared credentials, as stored (encrypted) in the state backend.

    A token scheme keeps ``access_token`` (and ``refresh_token`` where the vendor issues one); a
    session scheme keeps ``session_key``. Times are UNIX seconds.
    """

    access_token: str
    refresh_token: str | None
    session_key: str
    #: when the vendor says the credential expires (None: unknown, renewed when refused)
    expires_at: float | None
    #: when this process received it (tells a credential issued already expired)
    issued_at: float


def _encode(record: CredentialRecord) -> str:
    payload = json.dumps(record, sort_keys=True).encode()
    fernet = _fernet()
    if fernet is None:
        return "plain:" + payload.decode()
    return "fernet:" + fernet.encrypt(payload).decode()


def decode_record(raw: str) -> CredentialRecord:
    """Decrypt and parse a stored credential record."""
    scheme, _, body = raw.partition(":")
    if scheme == "plain":
        return cast("CredentialRecord", dict(json.loads(body)))
    fernet = _fernet()
    if scheme != "fernet" or fernet is None:
        raise ValueError("encrypted record but no Fernet key")
    return cast("CredentialRecord", dict(json.loads(fernet.decrypt(body.encode()).decode())))


class CredentialStore:
    """
    One connection's credentials, shared across processes.

    :param backend: the state backend.
    :param key: identifies the credential (vendor, host and login): two connections for the
        same account share one session.
    :param lock_timeout: seconds to wait for another process's sign-in or refresh.
    """

    def __init__(self, backend: StateBackend, key: str, *, lock_timeout: float = 120.0) -> None:
        self.backend = backend
        self.key = key
        self.lock_timeout = lock_timeout
        #: the last stored text read and what it decoded to: the same text (Fernet tokens carry a
        #: random IV, so equal text means the same record) is not decrypted and masked again
        self._decoded: tuple[str, CredentialRecord] | None = None

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """
        The cross-process lock under which credentials are refreshed or replaced.

        :raises BridgeConfigError: first, when ``[core] fernet_key`` is malformed, so nothing is
            signed in that could not be stored encrypted.
        """
        _fernet()
        return self.backend.lock(f"credentials:{self.key}", self.lock_timeout)

    def load(self) -> CredentialRecord | None:
        """Return the stored record (secrets masked in logs from now on), or None."""
        return self.load_versioned()[0]

    def load_versioned(self) -> tuple[CredentialRecord | None, int | None]:
        """
        Return the stored record and its version (``(None, None)`` when there is none).

        Pass the version to :meth:`save_if_unchanged`: the save then succeeds only if nobody wrote
        the record since, which fences off a holder whose lock lease ran out.
        """
        found = self.backend.get_versioned(NAMESPACE, self.key)
        if found is None:
            return None, None
        raw, version = found
        cached = self._decoded
        if cached is not None and cached[0] == raw:
            return CredentialRecord(**cached[1]), version  # a copy: callers may change theirs
        try:
            record = decode_record(raw)
        except BridgeConfigError:
            raise
        except Exception:
            # Undecryptable (Fernet key rotated or removed): treat as absent; we will sign in.
            log.warning("Stored credentials for this connection could not be read; they will be renewed")
            return None, version
        for field in SECRET_FIELDS:
            mask(record.get(field))
        self._decoded = (raw, CredentialRecord(**record))
        return record, version

    def save(self, record: CredentialRecord) -> None:
        """Store ``record``, replacing the previous one. Call with :meth:`locked` held."""
        for field in SECRET_FIELDS:
            mask(record.get(field))
        self.backend.set(NAMESPACE, self.key, _encode(record))

    def save_if_unchanged(self, record: CredentialRecord, version: int | None) -> bool:
        """
        Store ``record`` only if the stored one is still at ``version`` (None: there was none).

        Call with :meth:`locked` held, passing the version :meth:`load_versioned` returned under
        it. False (nothing stored) means another holder wrote a newer record meanwhile: this
        one's lock lease ran out, and the newer record wins.
        """
        for field in SECRET_FIELDS:
            mask(record.get(field))
        return self.backend.compare_and_set(NAMESPACE, self.key, _encode(record), version)

    def clear(self) -> None:
        """Forget the stored record."""
        self.backend.delete(NAMESPACE, self.key)
