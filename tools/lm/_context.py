"""How many positions a transformers model reads (its context window)."""

from __future__ import annotations

from typing import Any

__all__ = ["context_length"]


def context_length(model: Any) -> int | None:
    """The model's position limit (``max_position_embeddings`` or ``n_positions``), or ``None`` if it has none."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
