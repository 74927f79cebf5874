"""Browser sessions of the web app: an API key signs in once; the cookie carries only a random token.

The session table lives in the server process (a restart signs everyone out). A session holds the
key's :class:`~agent.server._auth.Principal`, never the key. Every state-changing form carries a one-time
token minted for that session (a synchronizer token): a POST without one, with another session's, or
with one already spent (a replayed form) is refused before anything runs.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from agent.server._auth import Principal

__all__ = ["COOKIE", "SessionStore", "WebSession"]

COOKIE = "fa_session"
MAX_FORMS = 256  # one-time form tokens kept per session: enough for many open tabs, bounded memory


@dataclass
class WebSession:
    """One signed-in browser: who it is, when it expires, and the form tokens it was given."""

    token: str
    who: Principal
    expires: float  # time.monotonic() deadline; renewed on use (idle timeout)
    forms: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def mint(self) -> str:
        """A new one-time form token for this session (the oldest is dropped past :data:`MAX_FORMS`)."""
        nonce = secrets.token_urlsafe(24)
        self.forms[nonce] = None
        while len(self.forms) > MAX_FORMS:
            self.forms.popitem(last=False)
        return nonce

    def spend(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of this session's unspent form tokens; it is spent either way."""
        if not presented:
            return False
        for known in list(self.forms):  # compare each: the time does not depend on which one matches
            if hmac.compare_digest(known, presented):
                del self.forms[known]
                return True
        return False


class SessionStore:
    """Sessions by cookie token, with an idle timeout (``idle_s``) and a cap on how many are kept."""

    def __init__(self, idle_s: float = 8 * 3600, max_sessions: int = 10_000) -> None:
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._by_token: OrderedDict[str, WebSession] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, who: Principal) -> WebSession:
        """A new session for ``who`` (the oldest session is dropped past ``max_sessions``)."""
        session = WebSession(token=secrets.token_urlsafe(32), who=who, expires=time.monotonic() + self.idle_s)
        with self._lock:
            self._by_token[session.token] = session
            while len(self._by_token) > self.max_sessions:
                self._by_token.popitem(last=False)
        return session

    def get(self, token: str | None) -> WebSession | None:
        """The live session of a cookie token (renewed), or ``None`` for a missing, unknown or expired one."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if session.expires < now:
                del self._by_token[token]
                return None
            session.expires = now + self.idle_s
            self._by_token.move_to_end(token)
            return session

    def close(self, token: str) -> None:
        """Sign out: forget the session (its cookie and form tokens stop working)."""
        with self._lock:
            self._by_token.pop(token, None)
