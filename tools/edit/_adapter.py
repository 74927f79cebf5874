"""The adapter seam: a module wrapped in place so that edits live beside the original weights.

GRACE (a codebook of key -> value replacements) and WISE (a side memory with a router) are adapters. The
journal installs one on the first edit that needs it, passes each edit's payload to :meth:`EditAdapter.add`,
calls :meth:`EditAdapter.remove` on rollback, and puts the original module back when the adapter is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["EditAdapter"]


class EditAdapter(nn.Module):
    """Base class of adapters. ``base`` is the wrapped module, left exactly as it was.

    Subclasses implement :meth:`create`, :meth:`add`, :meth:`remove`, :meth:`edit_ids`, :meth:`export` and
    :meth:`restore`, and ``forward`` (which must call ``self.base``).
    """

    kind: ClassVar[str] = ""

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base

    @classmethod
    def create(cls, base: nn.Module, config: Mapping[str, Any]) -> EditAdapter:
        """A new, empty adapter around ``base``."""
        raise NotImplementedError

    def add(self, edit_id: str, payload: Mapping[str, Any]) -> None:
        """Add one edit's entries. Must validate before mutating (all or nothing)."""
        raise NotImplementedError

    def remove(self, edit_id: str) -> None:
        """Remove one edit's entries; the others stay effective."""
        raise NotImplementedError

    def edit_ids(self) -> list[str]:
        """Ids of the edits this adapter holds, oldest first."""
        raise NotImplementedError

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The adapter's state as tensors (saved with safetensors) and JSON metadata."""
        raise NotImplementedError

    @classmethod
    def restore(cls, base: nn.Module, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> EditAdapter:
        """Inverse of :meth:`export`."""
        raise NotImplementedError

    def attach(self, model: nn.Module) -> None:
        """Called once the adapter is installed in ``model`` (the whole model): an adapter that reads more than
        its module's input (DINM's gate: the attention mask) hooks the model here. Default: nothing."""

    def detach(self) -> None:
        """Called when the adapter is uninstalled: undo :meth:`attach`. Default: nothing."""
