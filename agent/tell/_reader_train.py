"""Training the learned reader's heads on generated sentences, and fitting its abstention threshold.

Deterministic: the same names, phrasings and seed give the same artifact on the same machine (one torch
thread, seeded initialisation and batch order). Steps:

1. split each relation's training phrasings (the grammar's, :func:`agent.tell._reader_data.training_phrasings`)
   and its name pairs into a *fit* part (75%) and a *calibration* part (25%), seeded;
2. encode the fit sentences once with the frozen MiniLM encoder; train the contextual span tagger
   (projection + BiLSTM, cross-entropy per token) and the relation classifier (cross-entropy per sentence,
   fed the gold spans) together with Adam, in batches of whole sentences;
3. read the calibration sentences (phrasings and names the heads never saw) and choose the lowest threshold
   at which at most ``max_wrong`` of them are read into a wrong triple and accepted;
4. optionally (``acceptance=True``) fit the acceptance model on the same readings
   (:func:`agent.tell._acceptance.fit_acceptance`). :func:`calibrate_reader` redoes steps 1, 3 and 4 for
   trained heads (the same sentences, from the seed): what :func:`train_reader` gives for them.

Resumable: with a ``checkpoint`` directory, the heads, the optimiser and the batch-order generator are saved
after every epoch (``heads.pt``, written atomically, tagged with the run's settings); a rerun with the same
settings re-encodes the sentences (deterministic) and continues after the last finished epoch, so the
result is the one an uninterrupted run gives. A checkpoint of other settings is an error, never mixed in.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.tell._acceptance import fit_threshold
from agent.tell._reader import TokenEncoder
from agent.tell._reader_calibrate import (
    Progress,
    Splits,
    TrainReport,
    _calibrated_with_report,
    _encode,
    calibrate_reader,
    calibration_outcomes,
    generate_splits,
)
from agent.tell._reader_data import NONE, Example
from agent.tell._reader_model import Encoded, ReaderModel, span_masks
from tools.errors import ConfigError

__all__ = [
    "Progress",
    "Splits",
    "TrainReport",
    "calibrate_reader",
    "calibration_outcomes",
    "fit_threshold",
    "generate_splits",
    "train_reader",
]

logger = logging.getLogger(__name__)


def _tags(e: Encoded, ex: Example) -> np.ndarray:
    tags = np.zeros(len(e.offsets), dtype=np.int64)
    if ex.relation == NONE:
        return tags
    for k, (a, b) in enumerate(e.offsets):
        if b <= a:
            continue
        if a < ex.subject[1] and b > ex.subject[0]:
            tags[k] = 1
        elif a < ex.object[1] and b > ex.object[0]:
            tags[k] = 2
    return tags


def _examples_as_tensors(encoded: Sequence[Encoded], examples: Sequence[Example]) -> list[tuple[Any, ...]]:
    """Per sentence: token inputs ``(T, H+1)``, gold tags ``(T,)``, span masks ``(3, T)``, fixed pair features."""
    import torch

    out = []
    for e, ex in zip(encoded, examples, strict=True):
        masks = span_masks(e, ex.subject, ex.object)
        empty = np.zeros(len(e.states), dtype=np.float32)
        fixed = ReaderModel.pair_features(e, np.zeros((len(e.states), 0), dtype=np.float32), ex.subject, ex.object)
        out.append(
            (
                torch.from_numpy(ReaderModel.token_inputs(e)),
                torch.from_numpy(_tags(e, ex)),
                torch.from_numpy(masks[:3].astype(np.float32) if ex.relation != NONE else np.stack([empty] * 3)),
                torch.from_numpy(fixed),
            )
        )
    return out


def _heads(width: int, pair_width: int, n_out: int, proj: int, lstm: int, hidden: int) -> Any:
    """The torch modules the numpy :class:`ReaderModel` mirrors (see :mod:`agent.tell._reader_model`)."""
    import torch

    class Heads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(width, proj)
            self.lstm = torch.nn.LSTM(proj, lstm, batch_first=True, bidirectional=True)
            self.tag = torch.nn.Linear(2 * lstm, 3)
            self.rel1 = torch.nn.Linear(pair_width + 6 * lstm, hidden)
            self.rel = torch.nn.Linear(hidden, n_out)

        def forward(self, x: Any, lengths: Any, masks: Any, fixed: Any) -> tuple[Any, Any]:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                torch.tanh(self.proj(x)), lengths, batch_first=True, enforce_sorted=False
            )
            ctx, _ = self.lstm(packed)
            ctx, _ = torch.nn.utils.rnn.pad_packed_sequence(ctx, batch_first=True, total_length=x.shape[1])
            pooled = torch.einsum("bkt,btd->bkd", masks, ctx) / masks.sum(-1, keepdim=True).clamp(min=1.0)
            pair = torch.cat([fixed, pooled.flatten(1)], dim=1)
            return self.tag(ctx), self.rel(torch.relu(self.rel1(pair)))

    return Heads()


def _train_heads(
    encoded: Sequence[Encoded],
    examples: Sequence[Example],
    relations: Sequence[str],
    seed: int,
    epochs: int,
    proj: int = 128,
    lstm: int = 96,
    hidden: int = 192,
    batch: int = 32,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train tagger and classifier together (gold spans feed the classifier); returns the numpy arrays.

    With ``checkpoint`` (a directory), resumes after the last epoch saved there and saves after each epoch.

    Raises:
        ConfigError: the checkpoint was written by a run of other settings, or cannot be read.
    """
    import torch
    from torch.nn.utils.rnn import pad_sequence

    torch.manual_seed(seed)
    data = _examples_as_tensors(encoded, examples)
    index = {r: i for i, r in enumerate(relations)}
    y_rel = torch.tensor([index.get(ex.relation, len(relations)) for ex in examples])
    width, pair_width = data[0][0].shape[1], data[0][3].shape[0]
    heads = _heads(width, pair_width, len(relations) + 1, proj, lstm, hidden)
    opt = torch.optim.Adam(heads.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    settings = {
        "seed": seed, "relations": list(relations), "sentences": len(data), "batch": batch,
        "sizes": [proj, lstm, hidden], "texts": _hash_texts(ex.text for ex in examples),
    }  # fmt: skip
    done = _resume(checkpoint, settings, heads, opt, gen) if checkpoint is not None else 0
    steps = (len(data) + batch - 1) // batch
    for epoch in range(done, epochs):
        order = torch.randperm(len(data), generator=gen).tolist()
        total = 0.0
        for k, step in enumerate(range(0, len(order), batch)):
            items = [data[i] for i in order[step : step + batch]]
            lengths = torch.tensor([len(it[0]) for it in items])
            x = pad_sequence([it[0] for it in items], batch_first=True)
            tags = pad_sequence([it[1] for it in items], batch_first=True, padding_value=-100)
            masks = pad_sequence([it[2].T for it in items], batch_first=True).transpose(1, 2)  # (B, 3, T)
            fixed = torch.stack([it[3] for it in items])
            tag_logits, rel_logits = heads(x, lengths, masks, fixed)
            loss = loss_fn(tag_logits.reshape(-1, 3), tags.reshape(-1)) + loss_fn(
                rel_logits, y_rel[order[step : step + batch]]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(items)
            if progress is not None and (k % 50 == 0 or k == steps - 1):
                progress(f"training epoch {epoch + 1}/{epochs}", k + 1, steps)
        logger.info("reader epoch %d: loss %.4f", epoch + 1, total / len(data))
        if checkpoint is not None:
            _save_checkpoint(checkpoint, settings, epoch + 1, heads, opt, gen)
    return _export(heads)


def _hash_texts(texts: Any) -> str:
    """A short digest of the training sentences (a checkpoint belongs to exactly these)."""
    import hashlib

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def _save_checkpoint(
    directory: Path, settings: Mapping[str, Any], epochs_done: int, heads: Any, opt: Any, gen: Any
) -> None:
    """Write ``heads.pt`` atomically (a crash mid-write leaves the previous epoch's checkpoint)."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "heads.pt.tmp"
    state = {
        "settings": dict(settings), "epochs_done": epochs_done, "heads": heads.state_dict(),
        "opt": opt.state_dict(), "gen": gen.get_state(),
    }  # fmt: skip
    torch.save(state, tmp)
    os.replace(tmp, directory / "heads.pt")


def _resume(directory: Path, settings: Mapping[str, Any], heads: Any, opt: Any, gen: Any) -> int:
    """Load ``heads.pt`` from ``directory`` into the modules; the number of epochs already done (0: none)."""
    import torch

    path = directory / "heads.pt"
    if not path.exists():
        return 0
    try:
        state = torch.load(path, weights_only=True)
        saved = state["settings"]
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"cannot read the reader checkpoint {path}: {exc} (delete it to start over)") from exc
    if saved != dict(settings):
        raise ConfigError(f"the reader checkpoint {path} is from a run of other settings (delete it to start over)")
    heads.load_state_dict(state["heads"])
    opt.load_state_dict(state["opt"])
    gen.set_state(state["gen"])
    logger.info("reader: resuming after epoch %d from %s", state["epochs_done"], path)
    return int(state["epochs_done"])


def _export(heads: Any) -> dict[str, Any]:
    """The trained modules as :class:`ReaderModel` arrays (``x @ w`` layout; LSTM biases summed)."""
    import torch

    with torch.no_grad():
        lstm = heads.lstm

        def t(x: Any) -> np.ndarray:
            return np.ascontiguousarray(x.detach().numpy().T.astype(np.float32))

        def v(x: Any) -> np.ndarray:
            return x.detach().numpy().astype(np.float32).copy()

        return {
            "wp": t(heads.proj.weight), "bp": v(heads.proj.bias),
            "wif": t(lstm.weight_ih_l0), "whf": t(lstm.weight_hh_l0), "bf": v(lstm.bias_ih_l0 + lstm.bias_hh_l0),
            "wib": t(lstm.weight_ih_l0_reverse), "whb": t(lstm.weight_hh_l0_reverse),
            "bb": v(lstm.bias_ih_l0_reverse + lstm.bias_hh_l0_reverse),
            "wt": t(heads.tag.weight), "bt": v(heads.tag.bias),
            "wr1": t(heads.rel1.weight), "br1": v(heads.rel1.bias), "wr": t(heads.rel.weight), "br": v(heads.rel.bias),
        }  # fmt: skip


def train_reader(
    names: Mapping[str, Sequence[tuple[str, str]]],
    relations: Sequence[str],
    encoder: TokenEncoder,
    *,
    seed: int = 0,
    epochs: int = 8,
    per_relation: int = 1200,
    max_wrong: float = 0.01,
    inverses: Mapping[str, Sequence[str]] | None = None,
    checkpoint: str | Path | None = None,
    progress: Progress | None = None,
    acceptance: bool = False,
) -> tuple[ReaderModel, TrainReport]:
    """Train the reader on sentences generated from ``names`` (see the module docstring).

    Args:
        names: relation id -> (subject, object) name pairs to fill phrasings with (keep evaluation names out).
        relations: the relation ids the classifier scores (the schema's; phrasings of others are skipped).
        encoder: the frozen token encoder.
        seed: seeds the splits, the sentences, initialisation and batch order.
        epochs: passes over the fit sentences.
        per_relation: fit sentences per relation (calibration uses a quarter of it).
        max_wrong: the calibration share of sentences that may be accepted with a wrong triple.
        inverses: relation id -> its schema inverses; a calibration reading of the inverse triple is right.
        checkpoint: a directory to save each epoch in and resume from (see the module docstring).
        progress: called as ``(stage, done, total)`` while encoding, training and calibrating.
        acceptance: also fit the acceptance model (:mod:`agent.tell._acceptance`); off by default: on the
            held-out free phrasings it read 0.645 right / 0.021 wrong against the fixed formula's 0.631 / 0.014,
            and it lost to the fixed formula on a calibration split where known names may lack facts.

    Raises:
        InvalidInputError: no relation has both phrasings and names.
        ConfigError: ``checkpoint`` holds a run of other settings.
    """

    import torch

    started = time.perf_counter()
    rng = random.Random(seed)
    splits = generate_splits(names, relations, seed=seed, per_relation=per_relation, rng=rng)
    rels, fit = list(splits.relations), splits.fit
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order, run after run
    try:
        encoded = _encode(encoder, [ex.text for ex in fit], "encoding training sentences", progress)
        arrays = _train_heads(
            encoded, fit, rels, seed, epochs, checkpoint=Path(checkpoint) if checkpoint else None, progress=progress
        )
        del encoded
    finally:
        torch.set_num_threads(threads)
    meta = {
        "seed": seed, "epochs": epochs, "per_relation": per_relation, "max_wrong": max_wrong,
        "fit_sentences": len(fit), "calibration_sentences": len(splits.cal),
    }  # fmt: skip
    model = ReaderModel(relations=tuple(rels), threshold=1.01, meta=meta, acceptance=None, **arrays)
    return _calibrated_with_report(
        model, encoder, splits, rng, inverses or {}, max_wrong, progress,
        acceptance=acceptance, fit_sentences=len(fit), started=started,
    )  # fmt: skip
