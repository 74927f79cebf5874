"""Validation of everything a caller hands the vector memory, and the time encoding of its tables.

Every check raises :class:`InvalidInputError` with a message naming the bad value, before anything is
written. Times are stored as integer microseconds since the Unix epoch (UTC), so SQL compares them exactly.
The rules the knowledge graph shares (``unsafe_character``, ``check_time``) live in ``tools.base``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from memory._records import MetadataValue
from tools.base import Scope, Triple, unsafe_character
from tools.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

MAX_TEXT_CHARS = 20_000
MAX_K = 10_000
MAX_KEY_CHARS = 64
MAX_ID_CHARS = 128
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INT64 = 2**63


def check_text(text: object, what: str = "text") -> str:
    """A non-empty string of at most 20,000 characters with no :func:`unsafe_character`."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError(f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"{what} has {len(text)} characters (limit {MAX_TEXT_CHARS})")
    bad = unsafe_character(text)
    if bad is not None:
        raise InvalidInputError(f"{what} contains {bad}; remove it (nothing was stored)")
    _check_utf8(text, what)
    return text


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be stored or embedded
        raise InvalidInputError(f"{what} is not valid Unicode (position {exc.start})") from exc


def check_optional_id(value: object, what: str) -> str | None:
    """``None`` or a non-blank string of at most 128 characters (edit ids, sources)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{what} must be a non-empty string of at most {MAX_ID_CHARS} characters")
    _check_utf8(value, what)
    return value


def check_item_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"item id must be a non-empty string, got {value!r}")
    return value


def check_scope(scope: object, *, allow_none: bool = True) -> Scope | None:
    """A :class:`Scope`; ``None`` (when allowed) and the empty scope both mean "no scope filter"."""
    if scope is None and allow_none:
        return None
    if not isinstance(scope, Scope):
        raise InvalidInputError(f"scope must be a Scope, got {type(scope).__name__}")
    return scope


def check_required_scope(scope: object, what: str = "scope") -> Scope:
    if not isinstance(scope, Scope):
        raise InvalidInputError(f"{what} must be a Scope, got {type(scope).__name__}")
    return scope


def check_triple(triple: object) -> Triple | None:
    if triple is not None and not isinstance(triple, Triple):
        raise InvalidInputError(f"triple must be a Triple or None, got {type(triple).__name__}")
    return triple


def check_metadata(metadata: object, what: str = "metadata") -> dict[str, MetadataValue]:
    """A mapping of 1-64 character string keys to JSON scalars (finite floats, 64-bit ints)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"{what} must be a mapping, got {type(metadata).__name__}")
    out: dict[str, MetadataValue] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_CHARS:
            raise InvalidInputError(f"{what} keys must be strings of 1-{MAX_KEY_CHARS} characters, got {key!r}")
        _check_utf8(key, f"{what} key")
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not -_INT64 <= value < _INT64:
                raise InvalidInputError(f"{what}[{key!r}] does not fit in 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInputError(f"{what}[{key!r}] is not a finite number")
        elif isinstance(value, str):
            _check_utf8(value, f"{what}[{key!r}]")
        else:
            raise InvalidInputError(f"{what}[{key!r}] must be a str, int, float or bool, got {type(value).__name__}")
        out[key] = value
    return out


def value_kind(value: MetadataValue) -> str:
    """The JSON type class a filter must match: ``b`` bool, ``n`` number, ``s`` string (so True != 1)."""
    if isinstance(value, bool):
        return "b"
    return "s" if isinstance(value, str) else "n"


def metadata_matches(stored: Mapping[str, MetadataValue], filters: Mapping[str, MetadataValue]) -> bool:
    """Whether every filter key is present in ``stored`` with an equal value of the same JSON type."""
    for key, want in filters.items():
        if key not in stored:
            return False
        have = stored[key]
        if value_kind(have) != value_kind(want) or have != want:
            return False
    return True


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def to_micros(t: datetime) -> int:
    """Microseconds since the Unix epoch (exact, no float rounding)."""
    return (t - _EPOCH) // _US


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def check_vectors(vectors: object, dimension: int, what: str = "vectors") -> np.ndarray:
    """``(n, dimension)`` finite vectors, returned L2-normalised as C-contiguous float32.

    Raises:
        InvalidInputError: wrong type or shape, NaN/inf entries, or a row too short to normalise.
    """
    import numpy as np

    try:
        array = np.asarray(vectors)
        # float32 input stays float32 (no copy of a large batch); anything else is checked in float64.
        array = array.astype(np.float32 if array.dtype == np.float32 else np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be a numeric array: {exc}") from exc
    if array.ndim != 2 or array.shape[1] != dimension:
        raise InvalidInputError(f"{what} must have shape (n, {dimension}), got {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(array, axis=1)
    if array.shape[0] and float(norms.min()) < 1e-6:
        raise InvalidInputError(f"{what} row {int(norms.argmin())} is (close to) zero and cannot be normalised")
    normalised = np.ascontiguousarray(array / norms[:, None], dtype=np.float32)
    if not np.isfinite(normalised).all():
        raise InvalidInputError(f"{what} have values too large to normalise in float32")
    return normalised


class Draft(NamedTuple):
    """One validated item of an ``add_many`` call."""

    text: str
    scope: Scope
    triple: Triple | None
    source: str | None
    metadata: dict[str, MetadataValue]


def check_drafts(
    texts: object,
    scope: object,
    scopes: object,
    triples: object,
    sources: object,
    metadatas: object,
) -> list[Draft]:
    """Validate the per-item arguments of ``add_many`` (all of them, before anything is written)."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError("texts must be a sequence of strings")
    n = len(texts)
    if scope is not None and scopes is not None:
        raise InvalidInputError("give scope or scopes, not both")
    columns = {"scopes": scopes, "triples": triples, "sources": sources, "metadatas": metadatas}
    for name, values in columns.items():
        if values is not None and (isinstance(values, str) or not isinstance(values, Sequence) or len(values) != n):
            raise InvalidInputError(f"{name} must be a sequence of {n} entries, one per text")
    one_scope = check_scope(scope) or Scope()

    def column(values: object, i: int) -> object:
        return None if values is None else values[i]  # type: ignore[index]  # a checked Sequence

    return [
        Draft(
            check_text(texts[i], f"texts[{i}]"),
            one_scope if scopes is None else check_required_scope(column(scopes, i), f"scopes[{i}]"),
            check_triple(column(triples, i)),
            check_optional_id(column(sources, i), f"sources[{i}]"),
            check_metadata(column(metadatas, i), f"metadatas[{i}]"),
        )
        for i in range(n)
    ]
