"""The agent's ask path over a tiny random local model of every supported ``model_type``.

The answers are noise; what must hold is that ``ask_many`` runs end to end (signals, the model's batched
generation and scoring, the policy) and returns one well-formed answer per question, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent import Agent, PolicyThresholds
from agent.wiring import WorkingMemory
from tests.tools import tiny_archs
from tools.lm import HFLanguageModel

QUESTIONS = ["Who is the CEO of Nokia?", "Where is the headquarters of Acme Widgets?"]


@pytest.mark.slow
def test_ask_runs_on_every_family(wm: WorkingMemory, tiny_tokenizer: Any, tmp_path: Path) -> None:
    for model_type in tiny_archs.MODEL_TYPE_NAMES:
        built = tiny_archs.build(model_type, tiny_tokenizer)
        lm = HFLanguageModel.load(tiny_archs.save(built, tmp_path / model_type), device="cpu")
        answers = Agent(wm, lm, thresholds=PolicyThresholds()).ask_many(QUESTIONS)
        assert len(answers) == len(QUESTIONS), model_type
        for answer in answers:
            assert answer.action in ("kg", "retrieval", "parametric", "abstain"), model_type
            assert 0.0 <= answer.confidence <= 1.0, model_type
