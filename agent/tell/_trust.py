"""Who may change what: user roles, trusted sources, and per-user rate limits (a token bucket).

The defence against knowledge poisoning (OneEdit's Controller): facts asserted by a trusted source — an
``admin`` or ``trusted`` user, or the world loader (``who`` = ``world`` or ``world:*``) — are not overwritten
by an ``untrusted`` user; such a statement is quarantined for an admin to review.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from agent.tell._records import Role
from tools.errors import InvalidInputError, RateLimitedError

__all__ = ["RateLimiter", "TrustPolicy", "check_user", "user_source"]

_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_ROLES: tuple[str, ...] = get_args(Role)


def check_user(user: object) -> str:
    """A user name: 1-128 letters, digits and ``_ . @ -`` (it goes into provenance and scopes).

    Raises:
        InvalidInputError: anything else.
    """
    if not isinstance(user, str) or not _USER.match(user):
        raise InvalidInputError(
            f"a user name is 1-128 letters, digits and _ . @ - (starting alphanumeric), got {user!r}"
        )
    return user


def user_source(user: str) -> str:
    """The provenance ``who`` of a user's statements."""
    return f"user:{user}"


@dataclass(frozen=True)
class TrustPolicy:
    """Roles of users and which sources count as trusted.

    Args:
        roles: user name -> role.
        default_role: the role of users not in ``roles``.
        untrusted_policy: ``contradictions`` quarantines an untrusted user's statement only when it
            contradicts a trusted fact; ``all`` quarantines every statement of theirs.
        trusted_sources: further ``who`` values (or prefixes ending in ``:``) that count as trusted.
    """

    roles: Mapping[str, Role] = field(default_factory=dict)
    default_role: Role = "user"
    untrusted_policy: Literal["contradictions", "all"] = "contradictions"
    trusted_sources: tuple[str, ...] = ("world", "world:")

    def __post_init__(self) -> None:
        for name, role in [*self.roles.items(), ("default_role", self.default_role)]:
            if role not in _ROLES:
                raise InvalidInputError(f"role of {name!r} must be one of {', '.join(_ROLES)}, got {role!r}")

    def role(self, user: str) -> Role:
        return self.roles.get(user, self.default_role)

    def is_trusted_user(self, user: str) -> bool:
        return self.role(user) in ("admin", "trusted")

    def is_trusted_source(self, who: str) -> bool:
        """Whether an assertion's ``who`` is trusted: a trusted user, or a listed source or source prefix."""
        if who.startswith("user:"):
            return self.is_trusted_user(who[len("user:") :])
        return any(who == s or (s.endswith(":") and who.startswith(s)) for s in self.trusted_sources)

    @classmethod
    def from_settings(cls, roles: Mapping[str, str], default_role: str, untrusted_policy: str) -> TrustPolicy:
        return cls(
            {user: cast(Role, role) for user, role in roles.items()},
            cast(Role, default_role),
            cast(Literal["contradictions", "all"], untrusted_policy),
        )


class RateLimiter:
    """Per-user token buckets: ``per_minute`` edits, refilled continuously; exempt roles are never limited.

    Args:
        per_minute: bucket size and refill per minute; 0 disables the limit.
        exempt: roles that are never limited.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        per_minute: int,
        exempt: Iterable[Role] = ("admin", "trusted"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 0:
            raise InvalidInputError(f"per_minute must be a non-negative integer, got {per_minute!r}")
        self.per_minute = per_minute
        self.exempt = frozenset(exempt)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, time of last refill)
        self._lock = threading.Lock()

    def check(self, user: str, role: Role) -> None:
        """Take one token for ``user``.

        Raises:
            RateLimitedError: the bucket is empty (``retry_after`` says when the next token comes).
        """
        if self.per_minute == 0 or role in self.exempt:
            return
        rate = self.per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(user, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[user] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise RateLimitedError(
                    f"user {user!r} has told {self.per_minute} edits in the last minute; try again in {wait:.0f}s",
                    retry_after=wait,
                )
            self._buckets[user] = (tokens - 1.0, now)

    def refund(self, user: str) -> None:
        """Give back a token taken for an edit that was then not written (e.g. it failed)."""
        with self._lock:
            if user in self._buckets:
                tokens, last = self._buckets[user]
                self._buckets[user] = (min(float(self.per_minute), tokens + 1.0), last)
