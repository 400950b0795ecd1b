"""Decoding vendor answers without letting a malformed one escape as a raw Python error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


def decode_json(response: requests.Response) -> Any:
    """
    The decoded JSON body of ``response``.

    :raises ValueError: when the body is not JSON, including JSON nested too deeply to decode
        (which the standard library reports as a ``RecursionError``).
    """
    try:
        return response.json()
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None
