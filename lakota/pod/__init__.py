"""Storage backends ("PODs"): memory, local folder, cache chains, S3 and HTTP.

`S3POD` and `HttpPOD` are imported on first access, so that importing lakota.pod never
requires boto3 or requests.
"""

from __future__ import annotations

import importlib

from lakota.pod.base import POD
from lakota.pod.cache import CachePOD
from lakota.pod.file import FilePOD
from lakota.pod.memory import MemPOD

__all__ = ["POD", "MemPOD", "FilePOD", "CachePOD"]  # plus S3POD and HttpPOD, lazily

_LAZY = {"S3POD": "lakota.pod.s3", "HttpPOD": "lakota.pod.http"}


def __getattr__(name: str) -> type:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return getattr(importlib.import_module(_LAZY[name]), name)
    except ImportError as exc:
        raise AttributeError(f"{name} is not available: {exc}") from exc
