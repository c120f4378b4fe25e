"""Canonical JSON (RFC 8785) and UTC time text: the bottom of the house.

Reports, envelopes, audit lines, manifests and inventories are all signed or chained over these
bytes, so there is exactly one way to write them. Times are written in two precisions, each
with a Z: ``utc_text`` keeps microseconds (reports, reviews, audit lines: two events in one
second stay ordered), ``utc_text_seconds`` keeps whole seconds (manifests, version records, the
trust store: a publisher's validity window needs no more). Both refuse a naive datetime rather
than guess its zone. ``parse_time_text`` is the one reader of time text from files and the
command line. Only ``kiosk.errors`` is imported.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import rfc8785

from kiosk.errors import TimeTextError

_I_JSON_MAX = 2**53 - 1

# Python's JSON encoder writes exactly RFC 8785's bytes for the values an inventory line holds:
# ASCII keys (sorted the same way in UTF-16 and code-point order), strings (the same short
# escapes and lower-case \u00xx for other control characters, everything else literal), integers
# within I-JSON range, true/false/null, arrays and objects. It is about four times faster than
# the pure-Python RFC 8785 serialiser, which matters at one line per file. Anything else (floats,
# non-ASCII keys, strings that are not valid Unicode) goes to rfc8785 itself.
_FAST_JSON = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, check_circular=False
)


def _i_json(obj: Any, plain: list[bool]) -> Any:
    t = type(obj)
    if t is str or obj is None or t is bool:  # exact types first: this runs per inventory value
        return obj
    if t is int:
        return obj if -_I_JSON_MAX <= obj <= _I_JSON_MAX else str(obj)
    if t is dict:
        if plain[0] and not all(type(k) is str and k.isascii() for k in obj):
            plain[0] = False
        return {k: _i_json(v, plain) for k, v in obj.items()}
    if t is list or t is tuple:
        return [_i_json(v, plain) for v in obj]
    if isinstance(obj, bool | str):  # subclasses (str enums): as the JSON value they are
        plain[0] = False
        return obj
    if isinstance(obj, int):
        plain[0] = False
        return obj if -_I_JSON_MAX <= obj <= _I_JSON_MAX else str(obj)
    if isinstance(obj, dict | list | tuple):
        plain[0] = False
        return _i_json(dict(obj) if isinstance(obj, dict) else list(obj), plain)
    plain[0] = False
    return obj


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes.

    Integers beyond ±(2^53 - 1) cannot round-trip through JSON (I-JSON); they only come from
    corrupt or crafted metadata (a file "size" of 4e18), so they are written as decimal
    strings rather than rounded or refused.
    """
    plain = [True]
    value = _i_json(obj, plain)
    if plain[0]:
        try:
            return _FAST_JSON.encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 decides what that becomes
            pass
    out: bytes = rfc8785.dumps(value)
    return out


def utc_text(t: datetime) -> str:
    """An aware datetime as RFC 3339 UTC text with a Z (microseconds kept)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime in a report")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_text_seconds(t: datetime) -> str:
    """An aware datetime as RFC 3339 UTC text with a Z, to the second (a fraction is dropped)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime in a manifest or record")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time_text(value: object, *, naive_is_utc: bool = False) -> datetime:
    """An RFC 3339 / ISO 8601 time as an aware datetime (its offset kept), or TimeTextError.

    Strict where it matters: only text, and only with a zone (``Z`` or ``+hh:mm``), because a
    time without one is ambiguous by hours and every time kiosk compares is an instant. The one
    exception is the command line (``naive_is_utc=True``), where an officer may type
    ``2027-01-31`` and is told in the help that it means UTC. ``TimeTextError`` is a
    ``ValueError``; the caller turns it into its own one-line message.
    """
    if not isinstance(value, str):
        raise TimeTextError(f"not a time: {value!r}")
    try:
        t = datetime.fromisoformat(value)
    except ValueError as e:
        raise TimeTextError(f"not an RFC 3339 / ISO 8601 time: {value!r}") from e
    if t.tzinfo is None:
        if not naive_is_utc:
            raise TimeTextError(f"a time without a time zone: {value!r}")
        t = t.replace(tzinfo=UTC)
    return t
