"""Who and why: the author, message and metadata a revision carries in its commit payload.

```python
from lakota.revinfo import make_info
make_info(message="month-end close", author="alice", meta={"job": "eod", "run": 3})
# {'author': 'alice', 'message': 'month-end close', 'meta': {'job': 'eod', 'run': 3}}
make_info()  # None: a revision without metadata keeps the exact bytes lakota 0.7.1 writes
```

The commit payload is a msgpack map (SPEC §3.4). A revision with metadata adds one key,
``"info"``, after the others: a map with ``author`` (str), ``message`` (str) and
``meta`` (a map of str to str, int, float or bool). Readers look keys up by name, so
lakota 0.7.1 ignores it (docs/format.md). Every encoding and decoding of that key goes
through this module, so that later additions to the commit format stay in one place.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any

import msgpack

from .errors import CorruptedDataError
from .utils import settings

__all__ = ["INFO_KEY", "default_author", "make_info", "read_info", "with_info"]

INFO_KEY = "info"
MAX_MESSAGE = 10_000  # characters
MAX_META_ITEMS = 64
MAX_META_TEXT = 1_000  # characters, for a key or a str value
_META_VALUES = (str, int, float, bool)


def default_author() -> str:
    """`settings.author`, else ``$LAKOTA_AUTHOR``, else ``user@host`` (read when called)."""
    for candidate in (settings.author, os.environ.get("LAKOTA_AUTHOR")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def make_info(
    message: str | None = None,
    author: str | None = None,
    meta: dict[str, Any] | None = None,
    default_message: str | None = None,
) -> dict | None:
    """The ``info`` map of a new revision, or None when nothing is to be recorded.

    `default_message` is used when `message` is None (merges, defrags and restores name
    themselves). The author defaults to `default_author()` once anything is recorded.
    """
    message = default_message if message is None else message
    if message is None and author is None and not meta:
        return None
    info: dict[str, Any] = {"author": _text(author, "author") if author is not None else ""}
    info["author"] = info["author"] or default_author()
    info["message"] = _text(message or "", "message", MAX_MESSAGE)
    info["meta"] = _checked_meta(meta or {})
    return info


def with_info(body: dict, info: dict | None) -> dict:
    """`body` (a commit map) with the ``info`` key when there is anything to record."""
    if info:
        body[INFO_KEY] = info
    return body


def read_info(payload: bytes) -> dict:
    """``{"author", "message", "meta"}`` of a commit payload (empty values without info)."""
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=False)[0]
    except (ValueError, IndexError, TypeError, msgpack.UnpackException) as exc:
        raise CorruptedDataError(f"Unable to decode commit: {exc}") from exc
    found = body.get(INFO_KEY) if isinstance(body, dict) else None
    found = found if isinstance(found, dict) else {}
    meta = found.get("meta")
    return {
        "author": str(found.get("author") or ""),
        "message": str(found.get("message") or ""),
        "meta": dict(meta) if isinstance(meta, dict) else {},
    }


def _text(value: Any, name: str, limit: int = MAX_META_TEXT) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{name} is too long ({len(value)} characters, at most {limit})")
    return value


def _checked_meta(meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict of str to str or number, not {type(meta).__name__}")
    if len(meta) > MAX_META_ITEMS:
        raise ValueError(f"meta has {len(meta)} items, at most {MAX_META_ITEMS} are allowed")
    checked = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise TypeError(f"meta keys must be strings, got {key!r}")
        if not isinstance(value, _META_VALUES):
            raise TypeError(
                f"meta value for {key!r} must be a str or a number, not {type(value).__name__}"
            )
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            raise ValueError(f"meta value for {key!r} does not fit in 64 bits")
        text = isinstance(value, str)
        checked[_text(key, "meta key")] = _text(value, f"meta[{key!r}]") if text else value
    return checked
