"""Value types shared by the vector memory, the knowledge graph and everything above them: ``Triple``, ``Scope``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.errors import InvalidInputError

__all__ = ["Scope", "Triple"]

_SCOPE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@dataclass(frozen=True)
class Triple:
    """A fact as plain strings: subject and object labels, relation id (``"company_ceo"``)."""

    subject: str
    relation: str
    object: str

    def __post_init__(self) -> None:
        for name in ("subject", "relation", "object"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"triple {name} must be a non-empty string, got {value!r}")
            if len(value) > 1_000:
                raise InvalidInputError(f"triple {name} is longer than 1000 characters")


@dataclass(frozen=True)
class Scope:
    """Who a memory belongs to, as agent-memory libraries scope it.

    Any field left ``None`` is a wildcard when searching and "unscoped" when writing. Ids are 1-128
    characters of letters, digits and ``_ . : @ -``.
    """

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("user_id", "agent_id", "run_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _SCOPE_ID.match(value)):
                raise InvalidInputError(
                    f"{name} must be 1-128 characters of letters, digits and _ . : @ -, got {value!r}"
                )

    @property
    def is_empty(self) -> bool:
        return self.user_id is None and self.agent_id is None and self.run_id is None
