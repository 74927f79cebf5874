"""The collector's familiarity and pmi rows read off the generate pass (issue 30): same signals, fewer forwards."""

from __future__ import annotations

from typing import Any

from agent import Agent, PolicyThresholds
from agent.wiring import WorkingMemory
from eval.world import World
from tests.conftest import REPO
from tools.lm import LeanLanguageModel

MORE = (
    "Who is the mother of Isaac Newton?",
    "Who is the CEO of Qantas?",
    "Which university did Pivae Rolvrind attend?",
    "Who is the spouse of Barack Obama?",
)


class _Positions:
    """Token positions read by a torch module's forward calls (a prefill or a score reads many; a step one)."""

    def __init__(self, module: Any) -> None:
        self.calls = self.tokens = 0
        self.handle = module.register_forward_pre_hook(self.count, with_kwargs=True)

    def count(self, _module: Any, _args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        t = kwargs["input_ids"].shape[1]
        self.calls += 1
        self.tokens += int(kwargs["attention_mask"][:, -t:].sum())


def test_scores_read_off_the_generate_pass_equal_fresh_ones_in_fewer_forwards(
    wm: WorkingMemory, small_world: World
) -> None:
    lm = LeanLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")
    agent = Agent(wm, lm, thresholds=PolicyThresholds())
    # the world's questions whose facts the KG does not hold (the model's signals are measured), and a few more
    questions = [q.text for q in small_world.questions if q.kind != "unknown"] + list(MORE)
    scopes = agent.scopes("default")
    seen = _Positions(lm._model)
    reused = agent.collector.collect(questions, scopes)  # no routing: every signal measured
    reused_forwards = (seen.calls, seen.tokens)
    seen.calls = seen.tokens = 0
    lm.generate_traced = None  # type: ignore[method-assign,assignment]  # the collector then scores every row afresh
    fresh = agent.collector.collect(questions, scopes)
    seen.handle.remove()
    assert sum(s.familiarity is not None for s in fresh) >= 4 and sum(s.pmi is not None for s in fresh) >= 4
    for a, b in zip(reused, fresh, strict=True):
        assert (a.familiarity is None) == (b.familiarity is None) and (a.pmi is None) == (b.pmi is None)
        assert a.familiarity is None or b.familiarity is None or abs(a.familiarity - b.familiarity) < 1e-5
        assert a.pmi is None or b.pmi is None or abs(a.pmi - b.pmi) < 1e-5
        assert a.model_calls == b.model_calls  # the signal's rows, however they were read
    # no score call where the model, "N/A" and familiarity rows were all read while generating
    assert reused_forwards[1] < seen.tokens and reused_forwards[0] < seen.calls
