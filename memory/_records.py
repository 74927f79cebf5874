"""The records the vector memory returns: one version of a memory item, and a scored search hit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from tools.base import Scope, Triple

__all__ = ["MemoryHit", "MemoryItem", "MetadataValue", "Status"]

MetadataValue = str | int | float | bool
"""A metadata value: a JSON scalar (no ``None``, lists or objects; floats are finite)."""

Status = Literal["active", "superseded", "deleted"]
"""``active``: the current version; ``superseded``: replaced by a later version; ``deleted``: soft-deleted."""


@dataclass(frozen=True)
class MemoryItem:
    """One version of a memory item.

    An item keeps its ``id`` across versions; ``update`` writes version ``n + 1`` and invalidates version
    ``n`` (``invalid_at`` set, status ``superseded``) without deleting it, so ``search(..., as_of=t)`` and
    ``history`` still see it. A version is valid at ``t`` iff ``valid_from <= t`` and (``invalid_at`` is
    ``None`` or ``t < invalid_at``). All datetimes are timezone-aware UTC.
    """

    id: str  # "m-" + 16 hex characters, stable across versions
    version: int  # 1, 2, ...
    text: str
    scope: Scope
    triple: Triple | None
    source: str | None  # provenance: "user:alice", "world:documents", "doc:d00017", ...
    edit_id: str | None  # the tell/edit that wrote this version (rollback removes it)
    created_at: datetime  # when this version was recorded
    valid_from: datetime
    invalid_at: datetime | None
    status: Status
    # A plain dict (treat it as read-only); left out of the hash so items stay hashable.
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict, hash=False)

    def is_valid_at(self, t: datetime) -> bool:
        """Whether this version is the valid one at ``t`` (timezone-aware)."""
        return self.valid_from <= t and (self.invalid_at is None or t < self.invalid_at)


@dataclass(frozen=True)
class MemoryHit:
    """A search result: ``score`` is the cosine similarity of query and item (higher is more similar); for
    ``search_lexical`` the BM25 score, for a fused ranking the normalised reciprocal-rank score in (0, 1]."""

    item: MemoryItem
    score: float
