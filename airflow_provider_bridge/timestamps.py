"""Parsing the timestamps vendors send (RFC 3339 with nanoseconds, no zone, date only)."""

from __future__ import annotations

import datetime as dt
import re

from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeConfigError

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(value: str) -> dt.datetime:
    """
    Parse an ISO 8601 / RFC 3339 timestamp into an aware UTC datetime.

    Fractions finer than microseconds are truncated; a value without a zone is taken as UTC
    (Bridgit's ``lastModifiedOn`` examples carry none); a date alone means its midnight UTC.

    :raises ValueError: when the value is not a timestamp.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(r"\1", text)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def record_timestamp(value: object, *, field: str) -> dt.datetime:
    """
    A timestamp the vendor sent in a record, parsed like :func:`parse_timestamp`.

    :param field: what to call the value in the error, e.g. ``projects[].lastModifiedOn``.
    :raises BridgeAPIError: naming ``field`` when the value is not a timestamp.
    """
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError):
            pass
    raise BridgeAPIError(f"The vendor sent {field} = {value!r:.80}, which is not an ISO 8601 timestamp")


def coerce_since(value: object, *, field: str = "since") -> dt.datetime:
    """
    Turn a user's ``since`` (datetime, pendulum DateTime or ISO 8601 string) into aware UTC.

    :raises BridgeConfigError: naming ``field`` when the value is not a point in time.
    """
    if isinstance(value, dt.datetime):
        aware = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        # a plain datetime even from pendulum (Airflow's context): its arithmetic differs
        return dt.datetime(
            aware.year,
            aware.month,
            aware.day,
            aware.hour,
            aware.minute,
            aware.second,
            aware.microsecond,
            tzinfo=dt.UTC,
        )
    if isinstance(value, str) and value.strip():
        try:
            return parse_timestamp(value)
        except ValueError:
            pass
    raise BridgeConfigError(
        f"{field}: expected a datetime or an ISO 8601 timestamp such as '2026-01-31T12:00:00Z', got {value!r}"
    )


def isoformat_z(value: dt.datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
