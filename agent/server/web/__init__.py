"""The web app of ``factagent serve``: server-rendered pages at ``/ui`` over the same service as the API.

Pages: sign in (an API key becomes a session cookie), chat (ask, tell), memory (search, browse, version
history with ``as of``), edits (log, rollback, quarantine review) and audits (start, progress, report,
compare). The same keys, roles and namespaces as the HTTP API apply, because every page calls
:class:`~agent.server._service.Service` as the signed-in key's principal. Templates are Jinja2 with
autoescaping; the few lines of JS only add comfort (every page reads and works without it).
"""

from __future__ import annotations

from agent.server.web._mount import mount_web
from agent.server.web._session import SessionStore, WebSession

__all__ = ["SessionStore", "WebSession", "mount_web"]
