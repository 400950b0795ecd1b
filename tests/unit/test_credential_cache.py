"""The credential store decrypts a stored record once per stored version, and sees every new one."""

from __future__ import annotations

from unittest import mock

from airflow_provider_bridge.state import credentials
from airflow_provider_bridge.state.credentials import CredentialStore
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend


def test_a_record_rotated_by_another_process_is_read_at_once_and_an_unchanged_one_is_not_decrypted_again():
    backend = MemoryStateBackend()
    mine, other = CredentialStore(backend, "acct"), CredentialStore(backend, "acct")
    other.save({"access_token": "token-one", "refresh_token": "refresh-one", "expires_at": None})
    with mock.patch.object(credentials, "decode_record", wraps=credentials.decode_record) as decode:
        assert mine.load()["refresh_token"] == "refresh-one"
        assert mine.load()["refresh_token"] == "refresh-one"
        assert decode.call_count == 1  # the same stored text: not decrypted again
        other.save({"access_token": "token-two", "refresh_token": "refresh-two", "expires_at": None})
        assert mine.load()["refresh_token"] == "refresh-two"  # rotated elsewhere: seen on the next read
        assert decode.call_count == 2


def test_a_caller_changing_its_copy_does_not_change_what_the_next_read_returns():
    backend = MemoryStateBackend()
    store = CredentialStore(backend, "acct")
    store.save({"access_token": "token-one", "expires_at": None})
    first = store.load()
    first["access_token"] = "changed"
    assert store.load()["access_token"] == "token-one"
