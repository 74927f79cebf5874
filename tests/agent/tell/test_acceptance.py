"""The reader's acceptance model: a logistic regression over a reading's evidence, its threshold fitted out of fold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agent.tell import Acceptance, ReaderModel, TokenEncoder, TripleReader
from agent.tell._acceptance import FEATURES, evidence_vector, fit_acceptance
from kg import Entity, EntityLinker
from tools.errors import ConfigError, InvalidInputError


def _rows(n: int = 400, seed: int = 0) -> list[tuple[tuple[float, ...] | None, bool]]:
    """Readings whose rightness follows the subject's span probability (and a few with nothing read)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[tuple[float, ...] | None, bool]] = []
    for _ in range(n):
        span = float(rng.uniform(0.05, 1.0))
        ok = bool(rng.random() < span**3)
        ev = evidence_vector(
            p=0.9, margin=3.0, none=0.01, span_s=span, span_o=0.9, linked_s=False, linked_o=True, type_s=0,
            type_o=1, swapped=False, pair=False,
        )  # fmt: skip
        rows.append((ev, ok))
    return rows + [(None, False)] * 20


def test_the_fit_learns_the_evidence_and_keeps_wrong_acceptances_under_the_bound() -> None:
    rows = _rows()
    acceptance = fit_acceptance(rows, max_wrong=0.01)
    assert acceptance.weights[FEATURES.index("log_span_s")] > 0.5  # surer spans: likelier right
    accepted = [(ev, ok) for ev, ok in rows if ev is not None and acceptance.probability(ev) >= acceptance.threshold]
    wrong = sum(1 for _, ok in accepted if not ok) / len(rows)
    assert 0 < len(accepted) < len(rows) and wrong <= 0.02  # the bound holds out of fold; in sample, close to it
    assert 0.0 < acceptance.calibration_correct < 1.0 and acceptance.calibration_wrong <= 0.01
    assert fit_acceptance(rows, max_wrong=0.1).threshold < acceptance.threshold  # a looser bound accepts more


def test_the_model_round_trips_and_bad_input_is_refused() -> None:
    acceptance = fit_acceptance(_rows(), max_wrong=0.01)
    back = Acceptance.from_dict(acceptance.as_dict())
    assert back.threshold == acceptance.threshold and back.weights == pytest.approx(acceptance.weights, abs=1e-6)
    with pytest.raises(ConfigError):
        Acceptance.from_dict({"weights": {"log_p": 1.0}, "bias": 0.0, "threshold": 0.5})
    with pytest.raises(ConfigError):
        Acceptance(weights=(1.0,), bias=0.0, threshold=0.5)
    with pytest.raises(InvalidInputError):  # nothing to separate
        fit_acceptance([(ev, True) for ev, _ in _rows() if ev is not None], max_wrong=0.01)


def test_the_reader_saves_its_acceptance_model_and_decides_with_it(tmp_path: Path) -> None:
    shipped = ReaderModel.load()
    fitted = fit_acceptance(_rows(), max_wrong=0.01)
    model = replace(shipped, acceptance=fitted)
    assert model.accept_at == fitted.threshold and replace(shipped, acceptance=None).accept_at == shipped.threshold
    model.save(tmp_path / "r.npz")
    assert ReaderModel.load(tmp_path / "r.npz").acceptance == Acceptance.from_dict(fitted.as_dict())
    linker = EntityLinker([Entity("urn:t:0", "AOL"), Entity("urn:t:1", "Tim Armstrong")])
    encoder = TokenEncoder()
    sentence = "Tim Armstrong took over as CEO of AOL."
    never = replace(model, acceptance=replace(fitted, bias=-60.0))
    always = replace(model, acceptance=replace(fitted, bias=60.0))
    read_never = TripleReader(never, encoder, linker).read(sentence)
    read_always = TripleReader(always, encoder, linker).read(sentence)
    assert read_never is not None and read_always is not None
    assert not read_never.accepted and read_always.accepted
    assert read_never.triple == read_always.triple and read_never.evidence == read_always.evidence
    assert read_always.confidence == pytest.approx(1.0) and read_never.confidence == pytest.approx(0.0)
