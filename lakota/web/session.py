"""Browser sessions: log in once with the server's token, then an HttpOnly cookie.

```python
from lakota.web.session import Sessions
sessions = Sessions("s3cr3t")
cookie = sessions.login("s3cr3t")          # None for a wrong token
assert sessions.valid(cookie)
sessions.logout(cookie)
```

The cookie holds a random session id, never the token; sessions live in the server's
memory (a restart logs everybody out) for `LIFETIME` seconds. The cookie is ``HttpOnly``
(scripts cannot read it) and ``SameSite=Strict`` (other sites cannot send it), scoped to
the web interface's path: it opens the read-only pages and their JSON routes, never the
storage protocol (``write``, ``rm``...), which still wants the bearer token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time

__all__ = ["COOKIE", "LIFETIME", "Sessions", "bearer_token"]

COOKIE = "lakota_session"
LIFETIME = 12 * 3600
MAX_SESSIONS = 10_000


class Sessions:
    """The open sessions of one server, checked against its token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("Sessions need a non-empty token")
        self._token = token.encode("utf-8")
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def token_ok(self, supplied: str) -> bool:
        """Constant-time comparison of `supplied` with the server's token."""
        return hmac.compare_digest(supplied.encode("utf-8"), self._token)

    def login(self, supplied: str) -> str | None:
        """A new session id for the right token, None for a wrong one."""
        if not self.token_ok(supplied):
            return None
        now = time.monotonic()
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired(now)
            if len(self._expiry) >= MAX_SESSIONS:
                oldest = min(self._expiry, key=self._expiry.__getitem__)
                del self._expiry[oldest]
            self._expiry[session] = now + LIFETIME
        return session

    def valid(self, session: str | None) -> bool:
        """True while `session` is open and not expired."""
        if not session:
            return False
        with self._lock:
            expiry = self._expiry.get(session)
        return expiry is not None and expiry > time.monotonic()

    def logout(self, session: str | None) -> None:
        with self._lock:
            self._expiry.pop(session or "", None)

    def _forget_expired(self, now: float) -> None:
        for session in [s for s, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[session]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is its shape."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()
