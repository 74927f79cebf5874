"""The paraphrase-agreement measurement (bench/paraphrase_agreement.py): its signals from hand-built ones."""

from __future__ import annotations

import math

import numpy as np

from agent import ModelView, Signals
from bench.paraphrase_agreement import candidates, vetoed, with_k


def _view(text: str, prob: float) -> ModelView:
    return ModelView("prompt", text, prob, prob / 2)


def _signals(model: str | None, paras: tuple[str, ...], prob: float = 0.8) -> Signals:
    return Signals(
        "Who is the CEO of Acme?",
        model=_view(model, prob) if model is not None else None,
        paraphrases=tuple(_view(p, 0.5) for p in paras),
    )


def test_with_k_keeps_the_first_k_paraphrases_and_recounts_their_agreement() -> None:
    s = _signals("Tim Cook", ("Tim Cook.", "Bob", "Tim Cook", "Jane Roe"))
    two = with_k(s, 2)
    assert len(two.paraphrases) == 2 and two.agreement == 0.5
    assert two.model_confidence == 0.8 * 0.5
    assert with_k(s, 4).agreement == 0.5 and with_k(s, 3).agreement == 2 / 3


def test_candidates_measure_agreement_and_the_agreeing_answers_probability() -> None:
    sig = [
        _signals("Tim Cook", ("Tim Cook",) * 6 + ("Bob",) * 6),
        _signals(None, ("Bob",) * 12),  # no model answer: not measured
        _signals("Tim Cook", ()),  # no paraphrase templates: not measured
    ]
    c = candidates(sig)
    assert c["agree_6"][0] == 1.0 and c["agree_12"][0] == 0.5
    assert math.isclose(c["meanp_12"][0], 6 * 0.5 / 12) and math.isclose(c["meanp_6"][0], 0.5)
    assert np.isnan(c["agree_6"][1]) and np.isnan(c["agree_6"][2]) and np.isnan(c["conf_6"][1])


def test_the_veto_withdraws_the_models_answer_below_the_threshold_only() -> None:
    sig = [_signals("A", ("A", "B")), _signals("A", ("A", "A")), _signals("A", ())]
    out = vetoed(sig, np.array([0.5, 1.0, np.nan]), 0.75)
    assert out[0].model is None and out[1].model is not None
    assert out[2].model is not None  # not measured (no paraphrases): the veto is off
