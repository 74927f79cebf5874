"""GRACE (Hartvigsen et al., 2023, "Aging with GRACE"): a codebook of key -> value replacements at one layer.

The adapter wraps one module (by default a late MLP output projection). Its codebook holds entries
``(key, value, radius, label, edit_id)``: a key is the wrapped module's *input* at one token position, the value
replaces the module's *output* at any position whose input lies within ``radius`` of its nearest key.

One request gives one entry per position from the last prompt token through the second-to-last target token
(the positions that predict the target tokens), so multi-token targets come out under greedy decoding with a
KV cache: the module input at layer ``l`` does not depend on replacements made at layer ``l``, so the keys are
read from one clean teacher-forced pass, and each decoding step looks up its own position.

Codebook rules on :meth:`GraceAdapter.add` (the paper's, with the label of a position being the token it
must produce):

* nearest key farther than ``eps_init + its radius`` -> a new entry with radius ``eps_init``;
* nearest key close and the **same label** -> expand: its radius grows to cover the new key (no new entry);
* nearest key close and a **different label** -> split: both radii shrink to half their distance;
* a key at (numerically) the same input with a different label supersedes the old entry (the paper's split
  would leave both radii at zero, so neither would ever fire again).

:meth:`GraceAdapter.remove` replays the remaining edits' payloads in their original order on an empty codebook,
so afterwards the codebook is bit for bit the one those edits alone would have built: radii that the removed
edit split or expanded are back, and keys that had been absorbed into its entries regain their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as nnf

from tools.edit._adapter import EditAdapter
from tools.edit._delta import AdapterDelta, check_finite
from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._hooks import Trace
from tools.edit._protocol import BaseEditor, model_device_dtype
from tools.edit._request import EditRequest, encode_requests
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["GraceAdapter", "GraceEditor", "GraceHyperParams"]
logger = logging.getLogger(__name__)

_SAME_INPUT = 1e-2  # keys closer than this fraction of eps_init are the same input (a re-edit supersedes)


@dataclass(frozen=True)
class GraceHyperParams:
    """Settings of GRACE."""

    layers: tuple[int, ...]  # one layer: the module at ``module.format(layer)`` is wrapped
    module: str  # template of the wrapped module's path (default: the family's MLP output projection)
    eps_init: float  # initial deferral radius, in the L2 scale of the module's input
    steps: int  # optimisation steps per value batch
    lr: float  # Adam learning rate of the values
    stop_nll: float  # stop early once every target token's negative log-likelihood is below this

    @classmethod
    def for_family(cls, family: ModelFamily) -> GraceHyperParams:
        """Defaults: the last layer's MLP output; radii measured on the reference models.

        Distances between the last-token inputs of different prompts at that layer are ~8+ (GPT-2, input
        norm ~17) and ~10+ (LLaMA, norm ~45); the same prompt in another batch moves by < 1e-3.
        """
        radius = family.grace_radius
        return cls(
            layers=(family.n_layers - 1,),
            module=family.mlp_out,
            eps_init=radius,
            steps=100,
            lr=0.5,
            stop_nll=0.05,
        )


@dataclass
class _Codebook:
    """Entries as tensors: keys ``(N, in)``, values ``(N, out)``, radii ``(N,)``, labels ``(N,)``; owners by id."""

    keys: torch.Tensor
    values: torch.Tensor
    radii: torch.Tensor
    labels: torch.Tensor
    owners: list[str]

    @classmethod
    def empty(cls, d_in: int, d_out: int, device: torch.device) -> _Codebook:
        f32 = torch.float32
        return cls(
            torch.zeros(0, d_in, device=device, dtype=f32),
            torch.zeros(0, d_out, device=device, dtype=f32),
            torch.zeros(0, device=device, dtype=f32),
            torch.zeros(0, device=device, dtype=torch.long),
            [],
        )

    def __len__(self) -> int:
        return len(self.owners)

    def nearest(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distance to and index of the nearest live key for each query ``(M, in)``; ties go to the newest key."""
        dist = torch.cdist(queries.float(), self.keys.flip(0))  # (M, N), newest first
        dist = dist.masked_fill(self.radii.flip(0)[None, :] < 0, float("inf"))  # superseded entries never match
        best, idx = dist.min(dim=1)
        return best, len(self) - 1 - idx

    def insert(self, edit_id: str, key: torch.Tensor, value: torch.Tensor, label: int, eps_init: float) -> str:
        """Apply GRACE's rules for one key; returns what happened (for the change log)."""
        if bool((self.radii >= 0).any()):
            dist_t, idx_t = self.nearest(key[None])
            dist, j = float(dist_t[0]), int(idx_t[0])
            if dist <= eps_init + float(self.radii[j]):
                if int(self.labels[j]) == label:
                    if dist > float(self.radii[j]):
                        self.radii[j] = dist
                        return f"expand {j}"
                    return f"covered {j}"
                if dist < _SAME_INPUT * eps_init:
                    radius = float(self.radii[j])  # the new value takes over the old entry's region
                    self.radii[j] = -1.0  # superseded: never matches, kept so the order of entries is stable
                    self._append(edit_id, key, value, label, radius)
                    return f"supersede {j}"
                self.radii[j] = min(float(self.radii[j]), dist / 2)
                self._append(edit_id, key, value, label, min(eps_init, dist / 2))
                return f"split {j}"
        self._append(edit_id, key, value, label, eps_init)
        return "new"

    def _append(self, edit_id: str, key: torch.Tensor, value: torch.Tensor, label: int, radius: float) -> None:
        dev = self.keys.device
        self.keys = torch.cat([self.keys, key.float()[None].to(dev)])
        self.values = torch.cat([self.values, value.float()[None].to(dev)])
        self.radii = torch.cat([self.radii, torch.tensor([radius], device=dev, dtype=torch.float32)])
        self.labels = torch.cat([self.labels, torch.tensor([label], device=dev, dtype=torch.long)])
        self.owners.append(edit_id)


class GraceAdapter(EditAdapter):
    """A GRACE codebook around one module (``kind = "grace"``).

    Config: ``eps_init`` (float). Payload of one edit: ``keys`` ``(n, in)``, ``values`` ``(n, out)`` (float) and
    ``labels`` ``(n,)`` (int64, the token each position must produce).
    """

    kind: ClassVar[str] = "grace"

    def __init__(self, base: nn.Module, eps_init: float) -> None:
        super().__init__(base)
        self.eps_init = float(eps_init)
        weight = base.weight
        assert isinstance(weight, torch.Tensor)
        d_out, d_in = _shape_out_in(base)
        self._d_in, self._d_out = d_in, d_out
        self._payloads: dict[str, dict[str, torch.Tensor]] = {}  # edit id -> its payload, oldest first
        self._changes: dict[str, list[str]] = {}  # edit id -> what its add did to the codebook
        self._book = _Codebook.empty(d_in, d_out, weight.device)

    @classmethod
    def create(cls, base: nn.Module, config: Mapping[str, Any]) -> GraceAdapter:
        """An empty codebook around ``base``."""
        return cls(base, float(config["eps_init"]))

    def _check(self, edit_id: str, payload: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        if edit_id in self._payloads:
            raise InvalidEditError(f"grace: edit {edit_id!r} is already in the codebook")
        try:
            keys, values, labels = payload["keys"], payload["values"], payload["labels"]
        except KeyError as exc:
            raise InvalidEditError(f"grace: payload lacks {exc}") from exc
        if not all(isinstance(t, torch.Tensor) for t in (keys, values, labels)):
            raise InvalidEditError("grace: keys, values and labels must be tensors")
        n = int(keys.shape[0]) if keys.dim() == 2 else -1
        if n < 1 or tuple(keys.shape) != (n, self._d_in) or tuple(values.shape) != (n, self._d_out):
            raise InvalidEditError(
                f"grace: expected keys (n, {self._d_in}) and values (n, {self._d_out}), "
                f"got {tuple(keys.shape)} and {tuple(values.shape)}"
            )
        if tuple(labels.shape) != (n,) or labels.is_floating_point():
            raise InvalidEditError(f"grace: labels must be {n} integers, got {tuple(labels.shape)} {labels.dtype}")
        check_finite("grace keys", keys)
        check_finite("grace values", values)
        dev = self._book.keys.device
        return {
            "keys": keys.detach().to(dev, torch.float32),
            "values": values.detach().to(dev, torch.float32),
            "labels": labels.detach().to(dev, torch.long),
        }

    def add(self, edit_id: str, payload: Mapping[str, Any]) -> None:
        """Insert one edit's keys under GRACE's rules (validated first: on error nothing changes).

        Raises:
            InvalidEditError: shapes do not fit the module, or the id is already present.
            NonFiniteUpdateError: a key or value holds NaN or inf.
        """
        entry = self._check(edit_id, payload)
        self._payloads[edit_id] = entry
        self._changes[edit_id] = self._insert(edit_id, entry)
        logger.debug("grace add %s: %s", edit_id, self._changes[edit_id])

    def _insert(self, edit_id: str, entry: Mapping[str, torch.Tensor]) -> list[str]:
        keys, values, labels = entry["keys"], entry["values"], entry["labels"]
        return [self._book.insert(edit_id, keys[i], values[i], int(labels[i]), self.eps_init) for i in range(len(keys))]

    def remove(self, edit_id: str) -> None:
        """Drop one edit and rebuild the codebook from the others' payloads, in their original order.

        Raises:
            InvalidEditError: the id is not in the codebook.
        """
        if edit_id not in self._payloads:
            raise InvalidEditError(f"grace: no edit {edit_id!r} in the codebook")
        del self._payloads[edit_id]
        del self._changes[edit_id]
        self._book = _Codebook.empty(self._d_in, self._d_out, self._book.keys.device)
        for other, entry in self._payloads.items():
            self._changes[other] = self._insert(other, entry)

    def edit_ids(self) -> list[str]:
        """Ids of the edits held, oldest first."""
        return list(self._payloads)

    def changes(self, edit_id: str) -> list[str]:
        """What adding ``edit_id`` did to the codebook, one word per key (``new``, ``expand j``, ``split j``...)."""
        return list(self._changes[edit_id])

    def __len__(self) -> int:
        return len(self._book)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped module's output, with positions whose input is within a key's radius replaced."""
        out = self.base(x)  # (B, T, out)
        if not len(self._book):
            return out
        flat = x.reshape(-1, x.shape[-1])  # (B*T, in)
        dist, idx = self._book.nearest(flat)
        hit = dist <= self._book.radii[idx]  # (B*T,)
        if not bool(hit.any()):
            return out
        replaced = self._book.values[idx].to(out.dtype)  # (B*T, out)
        flat_out = torch.where(hit[:, None], replaced, out.reshape(-1, out.shape[-1]))
        return flat_out.reshape(out.shape)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Payloads (for later rollbacks) and the codebook itself (so outputs reload bit-identical)."""
        tensors: dict[str, torch.Tensor] = {}
        for i, entry in enumerate(self._payloads.values()):
            tensors.update({f"edit{i}.{k}": v for k, v in entry.items()})
        book = self._book
        tensors.update({"book.keys": book.keys, "book.values": book.values, "book.radii": book.radii})
        tensors["book.labels"] = book.labels
        meta = {
            "eps_init": self.eps_init,
            "edits": list(self._payloads),
            "owners": book.owners,
            "changes": [self._changes[e] for e in self._payloads],
        }
        return tensors, meta

    @classmethod
    def restore(cls, base: nn.Module, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> GraceAdapter:
        """Inverse of :meth:`export`."""
        adapter = cls(base, float(meta["eps_init"]))
        dev = adapter._book.keys.device
        for i, edit_id in enumerate(meta["edits"]):
            adapter._payloads[edit_id] = {k: tensors[f"edit{i}.{k}"].to(dev) for k in ("keys", "values", "labels")}
        adapter._changes = {e: list(c) for e, c in zip(meta["edits"], meta["changes"], strict=True)}
        adapter._book = _Codebook(
            tensors["book.keys"].to(dev, torch.float32),
            tensors["book.values"].to(dev, torch.float32),
            tensors["book.radii"].to(dev, torch.float32),
            tensors["book.labels"].to(dev, torch.long),
            list(meta["owners"]),
        )
        return adapter


def _shape_out_in(module: nn.Module) -> tuple[int, int]:
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    if type(module).__name__ == "Conv1D":  # GPT-2 stores (in, out)
        return int(weight.shape[1]), int(weight.shape[0])
    return int(weight.shape[0]), int(weight.shape[1])


class GraceEditor(BaseEditor[GraceHyperParams]):
    """GRACE: each request adds codebook entries whose trained values make the model say its target.

    Requests of one batch each get their own entries (any batch size). The model is never modified by
    :meth:`compute`: keys come from a clean pass of the model as it is (with any installed codebook), values are
    trained through a hook that replaces the module's output at the edit positions.
    """

    name: ClassVar[str] = "grace"
    hparams_class: ClassVar[type] = GraceHyperParams

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: GraceHyperParams
    ) -> AdapterDelta:
        net = model.model
        family = family_of(net)
        if len(hparams.layers) != 1:
            raise InvalidEditError(f"grace wraps one layer, got layers={hparams.layers}")
        path = family.path(hparams.module, hparams.layers[0])
        get_module(net, path)
        device, _ = model_device_dtype(net)
        enc = encode_requests(model.tokenizer, requests, device)
        rows, cols = (enc.labels != -100).nonzero(as_tuple=True)  # (n,) the positions that predict targets
        labels = enc.labels[rows, cols]  # (n,)
        with Trace(net, path, retain_input=True, retain_output=True) as trace:
            net(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
        assert trace.input is not None and trace.output is not None
        keys = trace.input[rows, cols].float()  # (n, in)
        values = trace.output[rows, cols].float().clone().requires_grad_(True)  # (n, out), warm start

        def replace(out: torch.Tensor, _path: str) -> torch.Tensor:
            return out.index_put((rows, cols), values.to(out.dtype))

        opt = torch.optim.Adam([values], lr=hparams.lr)
        nll = torch.full_like(labels, float("inf"), dtype=torch.float32)
        steps = 0
        with torch.enable_grad(), Trace(net, path, edit_output=replace):
            while steps < hparams.steps:
                steps += 1
                logits = net(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
                nll = nnf.cross_entropy(logits[rows, cols].float(), labels, reduction="none")  # (n,)
                if float(nll.detach().max()) < hparams.stop_nll:
                    break
                opt.zero_grad()
                nll.mean().backward()
                opt.step()
        info = {"steps": steps, "max_nll": float(nll.detach().max()), "positions": int(labels.numel())}
        logger.debug("grace: %s", info)
        return AdapterDelta(
            method=self.name,
            requests=requests,
            adapter=GraceAdapter.kind,
            module_path=path,
            config={"eps_init": hparams.eps_init},
            payload={"keys": keys.detach(), "values": values.detach(), "labels": labels.detach()},
            info=info,
        )
