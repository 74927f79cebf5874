"""Training the learned reader's heads on generated sentences, and fitting its abstention threshold.

Deterministic: the same names, phrasings and seed give the same artifact on the same machine (one torch
thread, seeded initialisation and batch order). Steps:

1. split each relation's training phrasings (the grammar's, :func:`agent.tell._reader_data.training_phrasings`)
   and its name pairs into a *fit* part (75%) and a *calibration* part (25%), seeded;
2. encode the fit sentences once with the frozen MiniLM encoder; train the span tagger (cross-entropy per
   token) and the relation classifier (cross-entropy per sentence) with Adam on those features;
3. read the calibration sentences (phrasings and names the heads never saw) and choose the lowest threshold
   at which at most ``max_wrong`` of them are read into a wrong triple and accepted.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from agent.tell._reader import Encoded, ReaderModel, TokenEncoder, TripleReader
from agent.tell._reader_data import NONE, Example, make_examples, negative_phrasings, training_phrasings
from kg import Entity, EntityLinker, normalize_mention
from memory import Triple
from tools.errors import InvalidInputError

__all__ = ["TrainReport", "fit_threshold", "train_reader"]

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainReport:
    """What training gave: sizes, and the reader's accuracy on the calibration sentences at its threshold."""

    fit_sentences: int
    calibration_sentences: int
    threshold: float
    calibration_correct: float  # read correctly and accepted / all calibration sentences stating a relation
    calibration_wrong: float  # accepted and wrong / all calibration sentences (none-sentences included)
    seconds: float


T = TypeVar("T")


def _split(items: Sequence[T], share: float, rng: random.Random) -> tuple[list[T], list[T]]:
    """``(the rest, a seeded share)`` of ``items`` (at least one item goes to the share)."""
    pool = list(items)
    rng.shuffle(pool)
    k = max(1, round(len(pool) * share))
    return pool[k:], pool[:k]


@dataclass(frozen=True)
class _Fact:
    triple: Triple


class _PairFacts:
    """The calibration names' pairs as a :class:`~agent.tell._reader.FactSource` (their entity types)."""

    def __init__(self, pairs: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        self._by_subject: dict[str, list[_Fact]] = {}
        self._by_object: dict[str, list[_Fact]] = {}
        for relation, items in pairs.items():
            for s, o in items:
                fact = _Fact(Triple(s, relation, o))
                self._by_subject.setdefault(s, []).append(fact)
                self._by_object.setdefault(o, []).append(fact)

    def facts(self, subject: str | None = None, relation: str | None = None, obj: str | None = None) -> list[_Fact]:
        found = self._by_subject.get(subject, []) if subject is not None else self._by_object.get(obj or "", [])
        return [f for f in found if relation is None or f.triple.relation == relation]


def _known(
    pairs: Mapping[str, Sequence[tuple[str, str]]], rng: random.Random, share: float = 0.5
) -> tuple[EntityLinker, _PairFacts]:
    """A linker knowing ``share`` of the names (as in use: some told names are known, others are new)."""
    names = sorted({n for items in pairs.values() for pair in items for n in pair})
    known = [n for n in names if rng.random() < share]
    return EntityLinker([Entity(f"urn:cal:{i}", n) for i, n in enumerate(known)]), _PairFacts(pairs)


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


class _TokenTable:
    """Every training token's state once, and gather indexes that build :meth:`ReaderModel.token_features`
    rows per batch (the full ``(tokens, 4H+3)`` matrix of 20k sentences would take gigabytes)."""

    def __init__(self, encoded: Sequence[Encoded]) -> None:
        import torch

        states, caps, prev, nxt, sentence, means = [], [], [], [], [], []
        start = 0
        for k, e in enumerate(encoded):
            n = len(e.states)
            local = np.arange(n)
            prev.append(start + np.roll(local, 1))  # as np.roll in token_features: [CLS] and [SEP] wrap
            nxt.append(start + np.roll(local, -1))
            sentence.append(np.full(n, k))
            states.append(e.states)
            caps.append(e.capital)
            means.append(e.states[1:-1].mean(axis=0) if n > 2 else e.states.mean(axis=0))
            start += n
        self.states = torch.from_numpy(np.concatenate(states).astype(np.float32))
        self.caps = torch.from_numpy(np.concatenate(caps).astype(np.float32))[:, None]
        self.means = torch.from_numpy(np.stack(means).astype(np.float32))
        self.prev = torch.from_numpy(np.concatenate(prev))
        self.next = torch.from_numpy(np.concatenate(nxt))
        self.sentence = torch.from_numpy(np.concatenate(sentence))

    def features(self, index: Any) -> Any:
        """Rows ``index`` of the token features ``(len(index), 4H+3)``, in :meth:`ReaderModel.token_features` order."""
        import torch

        p, n = self.prev[index], self.next[index]
        return torch.cat(
            [
                self.states[p], self.states[index], self.states[n], self.means[self.sentence[index]],
                self.caps[p], self.caps[index], self.caps[n],
            ],
            dim=1,
        )  # fmt: skip


def _train_heads(
    encoded: Sequence[Encoded],
    examples: Sequence[Example],
    relations: Sequence[str],
    seed: int,
    epochs: int,
    hidden: int = 256,
) -> dict[str, np.ndarray]:
    import torch

    torch.manual_seed(seed)
    tags = [_tags(e, ex) for e, ex in zip(encoded, examples, strict=True)]
    table = _TokenTable(encoded)
    y_tok = torch.from_numpy(np.concatenate(tags))
    x_sen = torch.from_numpy(
        np.stack([ReaderModel.pair_features(e, ex.subject, ex.object) for e, ex in zip(encoded, examples, strict=True)])
    )
    index = {r: i for i, r in enumerate(relations)}
    y_sen = torch.tensor([index.get(ex.relation, len(relations)) for ex in examples])
    width = 4 * table.states.shape[1] + 3
    tagger = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))
    classifier = torch.nn.Sequential(
        torch.nn.Linear(x_sen.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, len(relations) + 1)
    )
    params = [*tagger.parameters(), *classifier.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        tok_order = torch.randperm(len(y_tok), generator=gen)
        sen_order = torch.randperm(len(x_sen), generator=gen)
        steps = max(1, len(tok_order) // 512)
        sen_batch = max(1, len(sen_order) // steps)
        total = 0.0
        for step in range(steps):
            ti = tok_order[step * 512 : (step + 1) * 512]
            si = sen_order[step * sen_batch : (step + 1) * sen_batch]
            loss = loss_fn(tagger(table.features(ti)), y_tok[ti])
            if len(si):
                loss = loss + loss_fn(classifier(x_sen[si]), y_sen[si])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        logger.info("reader epoch %d: loss %.4f", epoch + 1, total / steps)
    layers = {"1": tagger[0], "2": tagger[2], "r1": classifier[0], "r": classifier[2]}
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name, layer in layers.items():
            assert isinstance(layer, torch.nn.Linear)  # the Sequentials above: Linear, ReLU, Linear
            out[f"w{name}"] = layer.weight.T.numpy().copy()
            out[f"b{name}"] = layer.bias.numpy().copy()
    return out


def _correct(reading_triple: tuple[str, str, str], ex: Example) -> bool:
    s, r, o = reading_triple
    want = (ex.text[ex.subject[0] : ex.subject[1]], ex.relation, ex.text[ex.object[0] : ex.object[1]])
    return (
        r == want[1]
        and normalize_mention(s) == normalize_mention(want[0])
        and normalize_mention(o) == normalize_mention(want[2])
    )


def fit_threshold(outcomes: Sequence[tuple[float | None, bool]], max_wrong: float) -> tuple[float, float, float]:
    """The lowest threshold whose accepted-and-wrong share of all sentences is at most ``max_wrong``.

    Args:
        outcomes: per sentence ``(confidence or None when nothing was read, read correctly)``.
        max_wrong: the largest share of sentences that may be accepted with a wrong triple.

    Returns:
        ``(threshold, correct share, wrong share)`` at that threshold.
    """
    n = len(outcomes)
    if n == 0:
        raise InvalidInputError("fitting a threshold needs at least one calibration sentence")
    candidates = sorted({c for c, _ in outcomes if c is not None} | {1.01})
    for t in candidates:
        wrong = sum(1 for c, ok in outcomes if c is not None and c >= t and not ok) / n
        if wrong <= max_wrong:
            right = sum(1 for c, ok in outcomes if c is not None and c >= t and ok) / n
            return float(t), right, wrong
    return 1.01, 0.0, 0.0


def train_reader(
    names: Mapping[str, Sequence[tuple[str, str]]],
    relations: Sequence[str],
    encoder: TokenEncoder,
    *,
    seed: int = 0,
    epochs: int = 12,
    per_relation: int = 1200,
    max_wrong: float = 0.01,
    progress: Progress | None = None,
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

    Raises:
        InvalidInputError: no relation has both phrasings and names.
    """
    import time

    import torch

    started = time.perf_counter()
    rng = random.Random(seed)
    phrasings = training_phrasings()
    rels = [r for r in relations if r in phrasings and names.get(r)]
    if not rels:
        raise InvalidInputError("no relation has both training phrasings and names to train the reader on")
    fit_p, cal_p, fit_n, cal_n = {}, {}, {}, {}
    for r in rels:
        fit_p[r], cal_p[r] = _split(phrasings[r], 0.25, rng)
        fit_n[r], cal_n[r] = _split(sorted(set(names[r])), 0.25, rng)
    neg_fit, neg_cal = _split(negative_phrasings(), 0.25, rng)
    n_fit, n_cal = per_relation, max(1, per_relation // 4)
    fit = make_examples(
        fit_p, fit_n, per_relation=n_fit, negatives=neg_fit, n_negative=n_fit * len(rels) // 8, typo_rate=0.08,
        seed=seed,
    )  # fmt: skip
    cal = make_examples(
        cal_p, cal_n, per_relation=n_cal, negatives=neg_cal, n_negative=n_cal * len(rels) // 8, typo_rate=0.08,
        seed=seed + 1,
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order, run after run
    try:
        if progress is not None:
            progress(f"encoding {len(fit)} training sentences")
        encoded = encoder.encode([ex.text for ex in fit])
        if progress is not None:
            progress("training the heads")
        arrays = _train_heads(encoded, fit, rels, seed, epochs)
        model = ReaderModel(relations=tuple(rels), threshold=1.01, meta={}, **arrays)
        if progress is not None:
            progress(f"calibrating on {len(cal)} held-out sentences")
        reader = TripleReader(model, encoder, *_known(cal_n, rng))
        outcomes: list[tuple[float | None, bool]] = []
        for e, ex in zip(encoder.encode([ex.text for ex in cal]), cal, strict=True):
            reading = reader.read_encoded(e)
            if reading is None or reading.alternatives:
                outcomes.append((None, ex.relation == NONE))
                continue
            t = reading.triple
            outcomes.append(
                (reading.confidence, ex.relation != NONE and _correct((t.subject, t.relation, t.object), ex))
            )
    finally:
        torch.set_num_threads(threads)
    threshold, right, wrong = fit_threshold(outcomes, max_wrong)
    stating = sum(1 for ex in cal if ex.relation != NONE)
    report = TrainReport(
        fit_sentences=len(fit),
        calibration_sentences=len(cal),
        threshold=threshold,
        calibration_correct=round(right * len(cal) / max(1, stating), 4),
        calibration_wrong=round(wrong, 4),
        seconds=round(time.perf_counter() - started, 1),
    )
    meta = {
        "seed": seed, "epochs": epochs, "per_relation": per_relation, "max_wrong": max_wrong,
        "fit_sentences": report.fit_sentences, "calibration_sentences": report.calibration_sentences,
        "calibration_correct": report.calibration_correct, "calibration_wrong": report.calibration_wrong,
    }  # fmt: skip
    final = ReaderModel(relations=tuple(rels), threshold=threshold, meta=meta, **arrays)
    return final, report
