"""Fine-tuning the reader: the MiniLM encoder's top layers trained jointly with the span tagger and the
relation classifier, starting from a trained (frozen-encoder) reader.

The frozen encoder's states were made for sentence similarity, not for "who is whose advisor"; the heads
alone cannot make up for that (the most missed relations were right but unsure). Here the gradient of the
same two losses as :func:`agent.tell._reader_train.train_reader` (tags per token, relation per sentence
given the gold spans) also flows into the top ``layers`` transformer layers of the encoder; the embeddings
and lower layers stay frozen. Steps:

1. the same fit / calibration split as the base reader's training (:func:`generate_splits` with the seed and
   sizes in ``base.meta``): the calibration sentences are never trained on;
2. the heads start from ``base``'s arrays, the encoder from the shipped weights (or, with
   ``from_base_encoder``, from ``base``'s tuned layers: a further tuning of a tuned reader); Adam, the encoder at
   ``lr`` and the heads at ``head_lr``, both decayed linearly to zero over the run, dropout on (the
   encoder's own);
3. the changed layers are rounded to float16 (what the artifact stores), and the threshold is fitted on the
   calibration sentences read with them (:func:`agent.tell._reader_calibrate._calibrate`).

Deterministic on one machine (one torch thread, seeded); resumable per epoch like the heads' training
(``tune.pt`` in ``checkpoint``, tagged with the run's settings; other settings are refused).
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.tell._reader import TokenEncoder
from agent.tell._reader_calibrate import Progress, TrainReport, _calibrated_with_report, generate_splits
from agent.tell._reader_data import NONE, Example
from agent.tell._reader_model import Encoded, ReaderModel, span_masks
from agent.tell._reader_train import _export, _hash_texts, _heads, _tags
from agent.tell._spans import capital_flags
from tools.errors import ConfigError, InvalidInputError

__all__ = ["TuneSettings", "fine_tune_reader"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneSettings:
    """How to fine-tune (defaults: what the shipped fine-tuned reader used)."""

    layers: int = 6  # top transformer layers trained (MiniLM-L6 has 6: all of them); the rest stay frozen
    epochs: int = 2  # passes over the fit sentences
    lr: float = 3e-5  # the encoder's peak learning rate
    head_lr: float = 3e-4  # the heads' (they start trained, so lower than their own training's 2e-3)
    batch: int = 32  # sentences per step
    limit: int = 0  # train on the first ``limit`` fit sentences only (0: all); for smoke runs
    from_base_encoder: bool = False  # start the encoder from the base reader's tuned layers (if it has them)

    def check(self) -> None:
        """Raises :class:`InvalidInputError` for settings no run can use."""
        if self.layers < 1 or self.epochs < 1 or self.batch < 1 or self.limit < 0:
            raise InvalidInputError(f"fine-tune settings must be positive: {self}")
        if not (0 < self.lr < 1 and 0 < self.head_lr < 1):
            raise InvalidInputError(f"fine-tune learning rates must be in (0, 1): {self}")


@dataclass(frozen=True)
class _Batchable:
    """One fit sentence, tokenised: ids, gold tags, span masks ``(4, T)``, subject-first flag."""

    ids: Any  # (T,) int64
    tags: Any  # (T,) int64
    capital: Any  # (T,) float32
    masks: Any  # (4, T) float32: subject, object, between, outside (all zero for a NONE sentence's first 3)
    first: float


def _tokenise(tokenizer: Any, examples: Sequence[Example], max_tokens: int) -> list[_Batchable]:
    import torch

    out: list[_Batchable] = []
    for start in range(0, len(examples), 512):
        chunk = examples[start : start + 512]
        enc = tokenizer([ex.text for ex in chunk], truncation=True, max_length=max_tokens, return_offsets_mapping=True)
        for ex, ids, offsets in zip(chunk, enc["input_ids"], enc["offset_mapping"], strict=True):
            off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            e = Encoded(ex.text, np.zeros((len(off), 0), np.float32), off, capital_flags(ex.text, off))
            masks = span_masks(e, ex.subject, ex.object).astype(np.float32)
            if ex.relation == NONE:
                masks[:3] = 0.0
            out.append(
                _Batchable(
                    torch.tensor(ids), torch.from_numpy(_tags(e, ex)), torch.from_numpy(e.capital),
                    torch.from_numpy(masks), float(ex.subject[0] <= ex.object[0]),
                )
            )  # fmt: skip
    return out


def _load_heads(heads: Any, model: ReaderModel) -> None:
    """Copy ``model``'s numpy arrays into the torch heads (the inverse of :func:`_export`)."""
    import torch

    def t(x: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x.T))

    def v(x: np.ndarray) -> Any:
        return torch.from_numpy(x.copy())

    lstm = heads.lstm
    state = {
        "proj.weight": t(model.wp), "proj.bias": v(model.bp),
        "lstm.weight_ih_l0": t(model.wif), "lstm.weight_hh_l0": t(model.whf),
        "lstm.bias_ih_l0": v(model.bf), "lstm.bias_hh_l0": torch.zeros_like(lstm.bias_hh_l0),
        "lstm.weight_ih_l0_reverse": t(model.wib), "lstm.weight_hh_l0_reverse": t(model.whb),
        "lstm.bias_ih_l0_reverse": v(model.bb), "lstm.bias_hh_l0_reverse": torch.zeros_like(lstm.bias_hh_l0_reverse),
        "tag.weight": t(model.wt), "tag.bias": v(model.bt), "rel1.weight": t(model.wr1), "rel1.bias": v(model.br1),
        "rel.weight": t(model.wr), "rel.bias": v(model.br),
    }  # fmt: skip
    heads.load_state_dict(state)


def _forward(encoder: Any, heads: Any, items: Sequence[_Batchable]) -> tuple[Any, Any]:
    """Tag logits ``(B, T, 3)`` and relation logits ``(B, R+1)`` of a batch, as the numpy reader computes them."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    ids = pad_sequence([it.ids for it in items], batch_first=True)
    lengths = torch.tensor([len(it.ids) for it in items])
    attention = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    states = encoder(input_ids=ids, attention_mask=attention).last_hidden_state  # (B, T, H)
    capital = pad_sequence([it.capital for it in items], batch_first=True)
    masks = pad_sequence([it.masks.T for it in items], batch_first=True).transpose(1, 2)  # (B, 4, T)
    pooled = torch.einsum("bkt,bth->bkh", masks, states) / masks.sum(-1, keepdim=True).clamp(min=1.0)
    first = torch.tensor([[it.first] for it in items])
    fixed = torch.cat([states[:, 0], pooled.flatten(1), first], dim=1)  # (B, 5H+1): ReaderModel.pair_features
    x = torch.cat([states, capital[..., None]], dim=2)  # (B, T, H+1): ReaderModel.token_inputs
    return heads(x, lengths, masks[:, :3], fixed)


def _trained_layers(encoder: Any, layers: int) -> list[str]:
    """The state-dict names of the parameters fine-tuning changes: those of the top ``layers`` layers."""
    total = len(encoder.encoder.layer)
    if layers > total:
        raise InvalidInputError(f"the encoder has {total} layers; cannot fine-tune {layers}")
    prefixes = tuple(f"encoder.layer.{i}." for i in range(total - layers, total))
    return [name for name, _ in encoder.named_parameters() if name.startswith(prefixes)]


def _tune(
    tokenizer: Any,
    encoder: Any,
    base: ReaderModel,
    fit: Sequence[Example],
    relations: Sequence[str],
    seed: int,
    settings: TuneSettings,
    max_tokens: int,
    checkpoint: Path | None,
    progress: Progress | None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Steps 2 of the module docstring on a copy of ``encoder``: ``(head arrays, changed encoder weights)``."""
    import torch

    torch.manual_seed(seed)
    data = _tokenise(tokenizer, fit, max_tokens)
    index = {r: i for i, r in enumerate(relations)}
    y_rel = torch.tensor([index.get(ex.relation, len(relations)) for ex in fit])
    model = copy.deepcopy(encoder).train()
    names = set(_trained_layers(model, settings.layers))
    for name, param in model.named_parameters():
        param.requires_grad_(name in names)
    lstm = base.whf.shape[0]
    heads = _heads(
        base.wp.shape[0], base.wr1.shape[0] - 6 * lstm, len(relations) + 1, base.wp.shape[1], lstm, base.wr1.shape[1]
    )
    _load_heads(heads, base)
    opt = torch.optim.Adam(
        [
            {"params": [p for n, p in model.named_parameters() if n in names], "lr": settings.lr},
            {"params": list(heads.parameters()), "lr": settings.head_lr},
        ]
    )
    steps = (len(data) + settings.batch - 1) // settings.batch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: max(0.0, 1.0 - k / (steps * settings.epochs)))
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    tag = {
        "seed": seed, "relations": list(relations), "sentences": len(data), "settings": repr(settings),
        "texts": _hash_texts(ex.text for ex in fit), "base": float(np.abs(base.wr).sum()),
    }  # fmt: skip
    done = _resume(checkpoint, tag, model, heads, opt, sched, gen) if checkpoint is not None else 0
    for epoch in range(done, settings.epochs):
        order = torch.randperm(len(data), generator=gen).tolist()
        total, started = 0.0, time.perf_counter()
        for k, step in enumerate(range(0, len(order), settings.batch)):
            chosen = order[step : step + settings.batch]
            items = [data[i] for i in chosen]
            tag_logits, rel_logits = _forward(model, heads, items)
            tags = torch.nn.utils.rnn.pad_sequence([it.tags for it in items], batch_first=True, padding_value=-100)
            loss = loss_fn(tag_logits.reshape(-1, 3), tags.reshape(-1)) + loss_fn(rel_logits, y_rel[chosen])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(items)
            if progress is not None and (k % 20 == 0 or k == steps - 1):
                progress(f"fine-tuning epoch {epoch + 1}/{settings.epochs}", k + 1, steps)
        logger.info(
            "reader fine-tune epoch %d: loss %.4f (%.0f s)", epoch + 1, total / len(data), time.perf_counter() - started
        )
        if checkpoint is not None:
            _save(checkpoint, tag, epoch + 1, model, heads, opt, sched, gen)
    heads.eval()
    weights = {n: p.detach().numpy().astype(np.float16) for n, p in model.named_parameters() if n in names}
    return _export(heads), weights


def _save(
    directory: Path, tag: Mapping[str, Any], done: int, model: Any, heads: Any, opt: Any, sched: Any, gen: Any
) -> None:
    """Write ``tune.pt`` atomically (a crash mid-write leaves the previous epoch's)."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    trained = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    state = {
        "settings": dict(tag), "epochs_done": done, "encoder": trained, "heads": heads.state_dict(),
        "opt": opt.state_dict(), "sched": sched.state_dict(), "gen": gen.get_state(),
        "rng": torch.get_rng_state(),  # dropout draws from it: a resumed run must continue its sequence
    }  # fmt: skip
    torch.save(state, directory / "tune.pt.tmp")
    os.replace(directory / "tune.pt.tmp", directory / "tune.pt")


def _resume(directory: Path, tag: Mapping[str, Any], model: Any, heads: Any, opt: Any, sched: Any, gen: Any) -> int:
    """Load ``tune.pt`` into the modules; the number of epochs already done (0: none there)."""
    import torch

    path = directory / "tune.pt"
    if not path.exists():
        return 0
    try:
        state = torch.load(path, weights_only=True)
        saved = state["settings"]
        rng = state["rng"]  # dropout's generator: a checkpoint without it cannot continue the run
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"cannot read the fine-tune checkpoint {path}: {exc} (delete it to start over)") from exc
    if saved != dict(tag):
        raise ConfigError(f"the fine-tune checkpoint {path} is from a run of other settings (delete it to start over)")
    model.load_state_dict(state["encoder"], strict=False)
    heads.load_state_dict(state["heads"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    gen.set_state(state["gen"])
    torch.set_rng_state(rng)
    logger.info("reader fine-tune: resuming after epoch %d from %s", state["epochs_done"], path)
    return int(state["epochs_done"])


def fine_tune_reader(
    base: ReaderModel,
    names: Mapping[str, Sequence[tuple[str, str]]],
    encoder: TokenEncoder,
    *,
    settings: TuneSettings | None = None,
    inverses: Mapping[str, Sequence[str]] | None = None,
    checkpoint: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[ReaderModel, TrainReport]:
    """Fine-tune ``base`` (a trained reader) with the encoder's top layers; see the module docstring.

    Args:
        base: the trained reader to start from; its ``meta`` gives seed, sentence count and ``max_wrong``.
        names: relation id -> (subject, object) pairs, the ones ``base`` was trained on.
        encoder: the shipped token encoder (it is not changed: a copy of its model is trained).
        settings: layers, epochs, learning rates, batch.
        inverses: relation id -> its schema inverses (a calibration reading of the inverse triple is right).
        checkpoint: a directory to save each epoch in and resume from.
        progress: called as ``(stage, done, total)``.

    Returns:
        The fine-tuned reader (its ``encoder`` holds the changed layers, float16) and the training report.

    Raises:
        ConfigError: ``base.meta`` lacks its training settings, or ``checkpoint`` holds another run.
        InvalidInputError: bad settings, or no relation has both phrasings and names.
    """
    import torch

    cfg = settings or TuneSettings()
    cfg.check()
    try:
        seed, per_relation = int(base.meta["seed"]), int(base.meta["per_relation"])
        max_wrong = float(base.meta["max_wrong"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the base reader's JSON lacks its training settings: {exc}") from exc
    started = time.perf_counter()
    rng = random.Random(seed)
    splits = generate_splits(names, base.relations, seed=seed, per_relation=per_relation, rng=rng)
    if splits.relations != base.relations:
        raise ConfigError("the base reader was trained on other relations than these names give")
    fit = splits.fit[: cfg.limit] if cfg.limit else splits.fit
    start = encoder.tuned(base.encoder) if cfg.from_base_encoder and base.encoder else encoder
    tokenizer, shipped = start.modules()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order, run after run
    try:
        arrays, weights = _tune(
            tokenizer, shipped, base, fit, base.relations, seed, cfg, encoder.max_tokens,
            Path(checkpoint) if checkpoint else None, progress,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    meta = {
        **{k: v for k, v in base.meta.items() if not k.startswith("calibration_")},
        "fine_tune": {"layers": cfg.layers, "epochs": cfg.epochs, "lr": cfg.lr, "head_lr": cfg.head_lr,
                      "batch": cfg.batch, "fit_sentences": len(fit)},
    }  # fmt: skip
    model = ReaderModel(relations=base.relations, threshold=1.01, meta=meta, acceptance=None, encoder=weights, **arrays)
    return _calibrated_with_report(
        model, encoder, splits, rng, inverses or {}, max_wrong, progress,
        acceptance=False, fit_sentences=len(fit), started=started,
    )  # fmt: skip
