"""Forward hooks as context managers that always detach (the idea of ROME's ``nethook.Trace``).

:class:`Trace` records a module's input and/or output and can rewrite its output; :class:`TraceDict` does the
same for several modules. Leaving the ``with`` block removes every hook, also on errors. :class:`Replay` skips
modules whose output a loop cannot change (the blocks below an edited layer), returning what they gave once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import torch
from torch import nn

from tools.edit._family import get_module

__all__ = ["Replay", "Trace", "TraceDict"]

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


class Replay:
    """Modules that give the same output on every call of a loop, run once and then replayed.

    An editor's optimisation loop calls the model again and again on one fixed batch while changing only what
    happens at one layer; the blocks below that layer compute the same hidden states every time. :meth:`record`
    runs the model once and keeps those modules' outputs; inside :meth:`active` each of them returns its kept
    output without running (its ``forward`` is replaced on the instance and restored on exit). Outputs are
    recorded without gradient, so nothing is back-propagated into the replayed modules.

    Only valid while the model is called with the inputs of :meth:`record` and the replayed modules' weights
    are not changed; the caller guarantees both.

    Args:
        model: the model holding the modules.
        paths: dotted paths of the modules to replay (e.g. ``transformer.h.0``).
    """

    def __init__(self, model: nn.Module, paths: Iterable[str]) -> None:
        self._modules = [get_module(model, path) for path in paths]
        self._outputs: list[Any] | None = None

    def record(self, run: Callable[[], object]) -> None:
        """Call ``run`` (one pass of the model on the loop's inputs) and keep the modules' outputs (no pass when
        there is nothing to replay, e.g. an edit at the lowest layer)."""
        if not self._modules:
            return
        outputs: dict[int, Any] = {}

        def keeper(index: int) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
            def hook(_module: nn.Module, _inputs: tuple[Any, ...], output: Any) -> None:
                outputs[index] = output

            return hook

        handles = [m.register_forward_hook(keeper(i)) for i, m in enumerate(self._modules)]
        try:
            with torch.no_grad():
                run()
        finally:
            for handle in handles:
                handle.remove()
        self._outputs = [outputs[i] for i in range(len(self._modules))]

    @contextmanager
    def active(self) -> Iterator[None]:
        """The modules return their recorded outputs inside the block (as they are, before :meth:`record`)."""
        if self._outputs is None or not self._modules:
            yield
            return
        saved = [m.__dict__.get("forward") for m in self._modules]
        for module, output in zip(self._modules, self._outputs, strict=True):
            module.forward = _returning(output)
        try:
            yield
        finally:
            for module, old in zip(self._modules, saved, strict=True):
                if old is None:
                    del module.forward
                else:
                    module.forward = old


def _returning(output: Any) -> Callable[..., Any]:
    def forward(*_args: Any, **_kwargs: Any) -> Any:
        return output

    return forward
