"""The reader's training splits and its calibration: which sentences fit the heads and which choose the
threshold, and how a reader with trained heads is calibrated (steps 1, 3 and 4 of
:mod:`agent.tell._reader_train`; :func:`calibrate_reader` redoes them for a trained reader, and the fine-tuning of
:mod:`agent.tell._reader_tune` ends with them too).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from agent.tell._acceptance import Acceptance, fit_acceptance, fit_relation_thresholds, fit_threshold
from agent.tell._reader import TokenEncoder, TripleReader
from agent.tell._reader_data import (
    NO_RELATION_CONTRAST,
    NONE,
    PERSON_PAIR_RELATIONS,
    Example,
    make_examples,
    negative_phrasings,
    split_by_construction,
    training_constructions,
    training_phrasings,
)
from agent.tell._reader_model import Encoded, ReaderModel
from kg import Entity, EntityLinker, normalize_mention
from memory import Triple
from tools.errors import ConfigError, InvalidInputError

__all__ = [
    "Progress",
    "Splits",
    "TrainReport",
    "calibrate_reader",
    "calibration_outcomes",
    "generate_splits",
]

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total): e.g. a tqdm bar per stage
CONTRAST_RATE = 0.25  # chance of each contrast sentence after a sentence between two people


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


def _encode(encoder: TokenEncoder, texts: Sequence[str], stage: str, progress: Progress | None) -> list[Encoded]:
    """``encoder.encode`` in chunks, reporting each chunk to ``progress``."""
    out: list[Encoded] = []
    chunk = 512
    for start in range(0, len(texts), chunk):
        out.extend(encoder.encode(texts[start : start + chunk]))
        if progress is not None:
            progress(stage, len(out), len(texts))
    return out


def _correct(reading_triple: tuple[str, str, str], ex: Example, inverses: Mapping[str, Sequence[str]]) -> bool:
    """The reading is the sentence's triple, or that triple stated from the other end through a schema
    inverse ("Y supervised X" for "X's advisor is Y"), as the reading benchmark counts it."""
    s, o = normalize_mention(reading_triple[0]), normalize_mention(reading_triple[2])
    want_s, want_o = normalize_mention(ex.text[slice(*ex.subject)]), normalize_mention(ex.text[slice(*ex.object)])
    if reading_triple[1] == ex.relation:
        return s == want_s and o == want_o
    return reading_triple[1] in inverses.get(ex.relation, ()) and s == want_o and o == want_s


@dataclass(frozen=True)
class Splits:
    """The generated sentences: *fit* (train the heads), *cal* (fit the threshold), and the calibration names."""

    relations: tuple[str, ...]
    fit: list[Example]
    cal: list[Example]
    cal_names: dict[str, list[tuple[str, str]]]


def generate_splits(
    names: Mapping[str, Sequence[tuple[str, str]]],
    relations: Sequence[str],
    *,
    seed: int = 0,
    per_relation: int = 1200,
    rng: random.Random | None = None,
) -> Splits:
    """Steps 1 of the module docstring: the fit and calibration sentences (seeded; ``rng`` continues after).

    Each relation's phrasings are split within each construction
    (:func:`agent.tell._reader_data.split_by_construction`: every construction has fit phrasings), its name
    pairs at random, a quarter of each to calibration. Phrasings are drawn construction first
    (:func:`agent.tell._reader_data.make_examples`). The fit
    sentences between two people also get direction and relation contrasts (:data:`CONTRAST_RATE`); the
    calibration sentences do not: a contrast puts one relation's names in the other direction or in
    another relation ("A fathered B" with A the child's name), against the entity types the graph knows of
    them, which the reader rightly uses to turn such readings down or round; calibrating on them counts
    those type checks as confident wrong readings (with them, no threshold kept 1% wrong). Doctoral advisor
    and student get no relation contrast with each other (:data:`agent.tell._reader_data.NO_RELATION_CONTRAST`).

    Raises:
        InvalidInputError: no relation has both phrasings and names.
    """
    rng = rng if rng is not None else random.Random(seed)
    phrasings = training_phrasings()
    rels = [r for r in relations if r in phrasings and names.get(r)]
    if not rels:
        raise InvalidInputError("no relation has both training phrasings and names to train the reader on")
    cons = training_constructions()
    fit_p, cal_p, fit_n, cal_n = {}, {}, {}, {}
    for r in rels:
        fit_p[r], cal_p[r] = split_by_construction(phrasings[r], cons[r], 0.25, rng)
        fit_n[r], cal_n[r] = _split(sorted(set(names[r])), 0.25, rng)
    neg_fit, neg_cal = _split(negative_phrasings(), 0.25, rng)
    n_fit, n_cal = per_relation, max(1, per_relation // 4)
    fit = make_examples(
        fit_p, fit_n, per_relation=n_fit, negatives=neg_fit, n_negative=n_fit * len(rels) // 8, typo_rate=0.08,
        seed=seed, constructions=cons, contrast=PERSON_PAIR_RELATIONS, contrast_rate=CONTRAST_RATE,
        no_relation_contrast=NO_RELATION_CONTRAST,
    )  # fmt: skip
    cal = make_examples(
        cal_p, cal_n, per_relation=n_cal, negatives=neg_cal, n_negative=n_cal * len(rels) // 8, typo_rate=0.08,
        seed=seed + 1, constructions=cons,
    )  # fmt: skip
    return Splits(tuple(rels), fit, cal, cal_n)


def calibration_outcomes(
    reader: TripleReader,
    encoded: Sequence[Encoded],
    cal: Sequence[Example],
    inverses: Mapping[str, Sequence[str]],
) -> list[tuple[float | None, bool]]:
    """Per calibration sentence ``(confidence or None, read correctly)``, as :func:`fit_threshold` takes them."""
    return [
        (None if ev is None else c, ok)
        for (ev, ok), c, _ in zip(*_read_calibration(reader, encoded, cal, inverses), strict=True)
    ]


def _read_calibration(
    reader: TripleReader, encoded: Sequence[Encoded], cal: Sequence[Example], inverses: Mapping[str, Sequence[str]]
) -> tuple[list[tuple[tuple[float, ...] | None, bool]], list[float], list[str | None]]:
    """Per calibration sentence ``(evidence or None, read correctly)``, the fixed-formula confidence and the
    relation read (``None``: no reading)."""
    rows: list[tuple[tuple[float, ...] | None, bool]] = []
    confidences: list[float] = []
    relations: list[str | None] = []
    for e, ex in zip(encoded, cal, strict=True):
        reading = reader.read_encoded(e)
        if reading is None or reading.alternatives:
            rows.append((None, ex.relation == NONE))
            confidences.append(0.0)
            relations.append(None)
            continue
        t = reading.triple
        ok = ex.relation != NONE and _correct((t.subject, t.relation, t.object), ex, inverses)
        rows.append((reading.evidence, ok))
        confidences.append(reading.confidence)
        relations.append(t.relation)
    return rows, confidences, relations


@dataclass(frozen=True)
class _Calibrated:
    threshold: float
    right: float  # share of all calibration sentences, at the fixed-formula threshold
    wrong: float
    acceptance: Acceptance | None  # None: the calibration readings could not fit one
    relation_thresholds: dict[str, float] = field(default_factory=dict)  # empty: one threshold for all


def _calibrate(
    model: ReaderModel,
    encoder: TokenEncoder,
    splits: Splits,
    rng: random.Random,
    inverses: Mapping[str, Sequence[str]],
    max_wrong: float,
    progress: Progress | None,
    acceptance: bool,
    by_relation: bool = False,
) -> _Calibrated:
    """Steps 3-4: read the calibration sentences with the trained heads, fit the fixed-formula threshold and
    with ``acceptance``, the acceptance model (``rng`` picks which calibration names the linker knows; it
    continues the splits')."""
    import torch

    bare = replace(model, threshold=1.01, acceptance=None)
    reader = TripleReader(bare, encoder, *_known(splits.cal_names, rng))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order, run after run
    try:
        cal_encoded = _encode(
            reader.encoder, [ex.text for ex in splits.cal], "encoding calibration sentences", progress
        )
    finally:
        torch.set_num_threads(threads)
    rows, confidences, read = _read_calibration(reader, cal_encoded, splits.cal, inverses)
    outcomes = [(None if ev is None else c, ok) for (ev, ok), c in zip(rows, confidences, strict=True)]
    threshold, right, wrong = fit_threshold(outcomes, max_wrong)
    if by_relation:  # "right" / "wrong" then report the per-relation thresholds'
        triples = [(r, c, ok) for r, (c, ok) in zip(read, outcomes, strict=True)]
        per, right, wrong = fit_relation_thresholds(triples, max_wrong)
        return _Calibrated(threshold, right, wrong, None, per)
    if not acceptance:
        return _Calibrated(threshold, right, wrong, None)
    try:
        fitted = fit_acceptance(rows, max_wrong)
    except InvalidInputError:  # every reading right, or every one wrong (tiny runs): the fixed formula decides
        logger.warning("reader calibration: readings all right or all wrong; no acceptance model fitted")
        return _Calibrated(threshold, right, wrong, None)
    stating = sum(1 for ex in splits.cal if ex.relation != NONE)  # report "right" of these, as the threshold's
    share = round(fitted.calibration_correct * len(splits.cal) / max(1, stating), 4)
    return _Calibrated(threshold, right, wrong, replace(fitted, calibration_correct=share))


def calibrate_reader(
    model: ReaderModel,
    names: Mapping[str, Sequence[tuple[str, str]]],
    encoder: TokenEncoder,
    *,
    inverses: Mapping[str, Sequence[str]] | None = None,
    progress: Progress | None = None,
    acceptance: bool = False,
    by_relation: bool = False,
) -> ReaderModel:
    """Re-fit a trained reader's threshold, and with ``acceptance`` its acceptance model (steps 1, 3, 4);
    with ``by_relation`` also a threshold per relation read (:func:`fit_relation_thresholds`, no acceptance
    model then).

    The calibration sentences are regenerated from the seed and sizes in ``model.meta``, so the result is
    what :func:`train_reader` gives for these heads: the heads are not touched.

    Raises:
        ConfigError: ``model.meta`` lacks the training settings (seed, per_relation, max_wrong).
        InvalidInputError: no relation has both phrasings and names.
    """
    try:
        seed, per_relation = int(model.meta["seed"]), int(model.meta["per_relation"])
        max_wrong = float(model.meta["max_wrong"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the reader's JSON lacks its training settings: {exc}") from exc
    rng = random.Random(seed)
    splits = generate_splits(names, model.relations, seed=seed, per_relation=per_relation, rng=rng)
    if splits.relations != model.relations:
        raise ConfigError("the reader was trained on other relations than these names give")
    cal = _calibrate(model, encoder, splits, rng, inverses or {}, max_wrong, progress, acceptance, by_relation)
    return _with_calibration(model, cal, len(splits.cal), sum(1 for ex in splits.cal if ex.relation != NONE))


def _with_calibration(model: ReaderModel, cal: _Calibrated, n_cal: int, stating: int) -> ReaderModel:
    meta = {
        **model.meta,
        "calibration_correct": round(cal.right * n_cal / max(1, stating), 4),
        "calibration_wrong": round(cal.wrong, 4),
    }
    return replace(
        model,
        threshold=cal.threshold,
        meta=meta,
        acceptance=cal.acceptance,
        relation_thresholds=cal.relation_thresholds,
    )


def _calibrated_with_report(
    model: ReaderModel,
    encoder: TokenEncoder,
    splits: Splits,
    rng: random.Random,
    inverses: Mapping[str, Sequence[str]],
    max_wrong: float,
    progress: Progress | None,
    *,
    acceptance: bool,
    fit_sentences: int,
    started: float,
) -> tuple[ReaderModel, TrainReport]:
    """Steps 3-4 for a model with trained heads (:func:`train_reader`, ``fine_tune_reader``): calibrate it and
    report the fit, the calibration and the seconds since ``started`` (``time.perf_counter``)."""
    cal = _calibrate(model, encoder, splits, rng, inverses, max_wrong, progress, acceptance)
    final = _with_calibration(model, cal, len(splits.cal), sum(1 for ex in splits.cal if ex.relation != NONE))
    report = TrainReport(
        fit_sentences=fit_sentences,
        calibration_sentences=len(splits.cal),
        threshold=cal.threshold,
        calibration_correct=float(final.meta["calibration_correct"]),
        calibration_wrong=float(final.meta["calibration_wrong"]),
        seconds=round(time.perf_counter() - started, 1),
    )
    return final, report
