"""Run only the blocks above an edited MLP: an exact shortcut for the value optimisation's repeated forwards.

The value optimisation (:func:`~tools.edit._values.compute_values`) changes one module's output, ``mlp_out`` of
block ``L``; the blocks below ``L`` and everything of block ``L`` up to that output see the same tokens at every
Adam step, so their results never change. In a sequential-residual block (GPT-2, LLaMA, Phi-3: ``out = A + M``
with ``A`` the residual stream after attention and ``M`` the MLP's output) the block's output is then a function
of ``M`` alone. :func:`cache_below` runs the blocks up to ``L`` once and keeps ``A``, ``M`` and the key ``x``
(``mlp_out``'s input), all ``(N, T, ·)``; :func:`skipping_below` swaps blocks ``0..L`` for stubs while the model
runs: the ones below ``L`` pass their input on, block ``L`` returns ``A + edit(x, M)``, the same additions in
the same order as the full forward, so the hidden states, the loss and the edit are bit-identical (a test
checks that on both reference models) and each step costs the blocks above ``L`` only.

With several edited modules (MEMIT's layers), :func:`lowest_edited` picks the lowest ``mlp_out``: the blocks up
to it run once, the others keep their hooks. :func:`stopping_after` ends a forward pass at a module (keys are
read without the blocks above it or the LM head).

Where this does not hold — parallel attention and MLP (GPT-J, GPT-NeoX, Falcon), a module that is not an
``mlp_out``, an MLP whose output is not ``mlp_out``'s, a block that does not output ``A + M`` exactly (a norm
after the MLP: Gemma-2, OLMo-2; checked on each batch since issue 29, the shortcut was taken there before) —
:func:`cache_below` returns ``None`` and the caller runs the whole model with hooks as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tools.edit._family import family_of, get_module, set_module
from tools.errors import InvalidEditError

__all__ = ["Below", "cache_below", "fused_activations", "lowest_edited", "skipping_below", "stopping_after"]

OutputEdit = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, M) -> M + the edit's change
_SEQUENTIAL = frozenset({"gpt2", "llama", "phi3"})  # families whose blocks add the MLP output last


@dataclass(frozen=True)
class Below:
    """What the blocks up to the edited MLP give for one batch (no gradient)."""

    blocks: tuple[str, ...]  # paths of blocks 0..L
    residual: torch.Tensor  # (N, T, d) block L's residual stream before the MLP's output is added
    mlp_output: torch.Tensor  # (N, T, d) the unedited mlp_out output
    keys: torch.Tensor  # (N, T, in) mlp_out's input


class _StopForwardError(Exception):
    """Raised by a hook to end a forward pass once block ``L`` has run."""


def _edited_layer(model: nn.Module, module_path: str) -> tuple[Any, int] | None:
    try:
        family = family_of(model)
    except InvalidEditError:  # an unknown architecture simply takes the full forward
        return None
    if family.name not in _SEQUENTIAL:
        return None
    for layer in range(family.n_layers):
        if family.path(family.mlp_out, layer) == module_path:
            return family, layer
    return None


def lowest_edited(model: nn.Module, paths: Iterable[str]) -> str | None:
    """Of several edited ``mlp_out`` paths, the one in the lowest block; ``None`` when one of them is not an
    ``mlp_out`` of a sequential-residual family (the shortcut then does not apply)."""
    layers: list[tuple[int, str]] = []
    for path in paths:
        found = _edited_layer(model, path)
        if found is None:
            return None
        layers.append((found[1], path))
    return min(layers)[1] if layers else None


@contextmanager
def stopping_after(model: nn.Module, module_path: str) -> Iterator[None]:
    """Inside, a forward pass of ``model`` ends (silently) once ``module_path`` has run: for reading a module's
    input or output without running the layers above it or the LM head (hooks registered earlier on that
    module still run first)."""
    handle = get_module(model, module_path).register_forward_hook(_raise_stop)
    try:
        yield
    except _StopForwardError:
        pass
    finally:
        handle.remove()


def _raise_stop(_module: nn.Module, _inputs: tuple[Any, ...], _output: Any) -> None:
    raise _StopForwardError


@torch.no_grad()
def cache_below(model: nn.Module, module_path: str, input_ids: torch.Tensor, mask: torch.Tensor) -> Below | None:
    """Run the blocks up to ``module_path``'s once on a batch; ``None`` when the shortcut is not exact here.

    Costs one forward of blocks ``0..L`` (the pass stops after block ``L``). ``A`` is block ``L``'s output with
    the MLP's output replaced by zeros (``A + 0 = A``); the MLP's output must be ``mlp_out``'s output unchanged
    (checked on the batch itself).
    """
    found = _edited_layer(model, module_path)
    if found is None:
        return None
    family, layer = found
    seen: dict[str, torch.Tensor] = {}

    def at_out(_m: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        seen["x"], seen["m"] = inputs[0], output
        return output

    def at_mlp(_m: nn.Module, _inputs: tuple[Any, ...], output: Any) -> Any:
        if not isinstance(output, torch.Tensor):
            raise _StopForwardError
        seen["mlp"] = output
        return torch.zeros_like(output)  # the block then outputs its residual stream alone

    def at_block(_m: nn.Module, _inputs: tuple[Any, ...], output: Any) -> Any:
        if isinstance(output, torch.Tensor):
            seen["a"] = output
        raise _StopForwardError

    paths = (module_path, family.path(family.mlp, layer), family.path(family.block, layer))
    hooks = (at_out, at_mlp, at_block)
    handles = [get_module(model, p).register_forward_hook(h) for p, h in zip(paths, hooks, strict=True)]
    try:
        model(input_ids=input_ids, attention_mask=mask)
    except _StopForwardError:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(seen) != 4 or (seen["mlp"] is not seen["m"] and not torch.equal(seen["mlp"], seen["m"])):
        return None
    # the block must output A + M exactly (not so with a norm after the MLP: Gemma-2, OLMo-2): checked on the batch
    real = _block_output(model, paths[2], input_ids, mask)
    if real is None or not torch.equal(real, seen["a"] + seen["m"]):
        return None
    blocks = tuple(family.path(family.block, i) for i in range(layer + 1))
    return Below(blocks=blocks, residual=seen["a"], mlp_output=seen["m"], keys=seen["x"])


def _block_output(model: nn.Module, block: str, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """The unedited output of ``block`` on the batch (the forward stops there); ``None`` if it is not a tensor."""
    out: list[torch.Tensor] = []

    def at_block(_m: nn.Module, _inputs: tuple[Any, ...], output: Any) -> Any:
        if isinstance(output, torch.Tensor):
            out.append(output)
        raise _StopForwardError

    handle = get_module(model, block).register_forward_hook(at_block)
    try:
        model(input_ids=input_ids, attention_mask=mask)
    except _StopForwardError:
        pass
    finally:
        handle.remove()
    return out[0] if out else None


class _PassOn(nn.Module):
    """A block below ``L``: its output is not read (block ``L``'s stub ignores its input)."""

    def forward(self, hidden_states: torch.Tensor, *_args: Any, **_kwargs: Any) -> torch.Tensor:
        return hidden_states


class _EditedBlock(nn.Module):
    """Block ``L`` as ``A + edit(x, M)`` from the cache."""

    def __init__(self, below: Below, edit: OutputEdit) -> None:
        super().__init__()
        self._below, self._edit = below, edit

    def forward(self, *_args: Any, **_kwargs: Any) -> torch.Tensor:
        return self._below.residual + self._edit(self._below.keys, self._below.mlp_output)


@contextmanager
def skipping_below(model: nn.Module, below: Below, edit: OutputEdit) -> Iterator[None]:
    """Inside, ``model`` runs blocks ``0..L`` from ``below`` (block ``L`` with ``edit``); restored on exit.

    Only for the batch ``below`` was cached from: the model must be called with that batch's ids and mask.
    """
    originals = [get_module(model, p) for p in below.blocks]
    try:
        for path in below.blocks[:-1]:
            set_module(model, path, _PassOn())
        set_module(model, below.blocks[-1], _EditedBlock(below, edit))
        yield
    finally:
        for path, module in zip(below.blocks, originals, strict=True):
            set_module(model, path, module)


_TANH_GELUS = frozenset({"NewGELUActivation", "GELUTanh", "PytorchGELUTanh"})  # transformers' tanh GELUs


@contextmanager
def fused_activations(model: nn.Module) -> Iterator[None]:
    """Inside, every tanh-approximated GELU module of ``model`` is torch's fused one; restored on exit.

    GPT-2's ``gelu_new`` is ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`` written as seven elementwise
    operations, each kept for the backward pass; ``nn.GELU(approximate="tanh")`` is the same formula in one
    kernel. The results differ by rounding only (about 1e-7 relative), but that is enough to change an Adam
    trajectory: edits are *not* bit-identical, so this is an option (``v_fused_activation``), not the default.
    Models without such a module (LLaMA's SiLU) are unchanged.
    """
    swapped = [(name, module) for name, module in model.named_modules() if type(module).__name__ in _TANH_GELUS]
    try:
        for name, _ in swapped:
            set_module(model, name, nn.GELU(approximate="tanh"))
        yield
    finally:
        for name, module in swapped:
            set_module(model, name, module)
