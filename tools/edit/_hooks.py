"""Forward hooks as context managers that always detach (the idea of ROME's ``nethook.Trace``).

:class:`Trace` records a module's input and/or output and can rewrite its output; :class:`TraceDict` does the
same for several modules. Leaving the ``with`` block removes every hook, also on errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import torch
from torch import nn

from tools.edit._family import get_module

__all__ = ["Trace", "TraceDict"]

OutputEdit = Callable[[torch.Tensor, str], torch.Tensor]


def _first_tensor(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


class Trace:
    """Hook one module.

    Args:
        model: the model holding the module.
        path: dotted module path.
        retain_input: keep the module's first positional input as :attr:`input` ``(B, T, in)``.
        retain_output: keep its output as :attr:`output` ``(B, T, out)``.
        detach: detach what is kept (turn off to backpropagate through recorded tensors).
        edit_output: ``fn(output, path) -> new_output`` applied to the module's output.
    """

    def __init__(
        self,
        model: nn.Module,
        path: str,
        *,
        retain_input: bool = False,
        retain_output: bool = False,
        detach: bool = True,
        edit_output: OutputEdit | None = None,
    ) -> None:
        self.path = path
        self.input: torch.Tensor | None = None
        self.output: torch.Tensor | None = None
        module = get_module(model, path)

        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
            if retain_input:
                self.input = inputs[0].detach() if detach else inputs[0]
            if edit_output is not None:
                if isinstance(output, tuple):
                    output = (edit_output(output[0], path), *output[1:])
                else:
                    output = edit_output(output, path)
            if retain_output:
                out = _first_tensor(output)
                self.output = out.detach() if detach else out
            return output

        self._handle = module.register_forward_hook(hook)

    def close(self) -> None:
        """Remove the hook (idempotent)."""
        self._handle.remove()

    def __enter__(self) -> Trace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TraceDict(dict[str, Trace]):
    """:class:`Trace` on several modules at once, keyed by path."""

    def __init__(self, model: nn.Module, paths: Iterable[str], **kwargs: Any) -> None:
        super().__init__()
        try:
            for path in paths:
                self[path] = Trace(model, path, **kwargs)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove every hook."""
        for trace in self.values():
            trace.close()

    def __enter__(self) -> TraceDict:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
