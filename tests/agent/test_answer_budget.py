"""Answer budgets follow the prompt: a CJK prompt decodes up to 24 tokens, others 12, alone or in any batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent import Agent, PolicyThresholds
from agent.wiring import WorkingMemory
from agent.zh_gate import has_cjk
from tests.conftest import REPO
from tools.lm import LeanLanguageModel

ENGLISH = ("Who is the CEO of Qantas?", "Who is the mother of Isaac Newton?")
CHINESE = ("成语「滥竽充数」是什么意思？", "「紅豆生南國」的下一句是什么？")


class _Budgets:
    """A model that records the answer budget every prompt was decoded with (its generate calls delegated)."""

    def __init__(self, lm: Any) -> None:
        self._lm = lm
        self.seen: dict[str, set[int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)

    def _note(self, prompts: Sequence[str], max_new_tokens: int) -> None:
        for p in prompts:
            self.seen.setdefault(p, set()).add(max_new_tokens)

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24, **kw: Any) -> Any:
        self._note(prompts, max_new_tokens)
        return self._lm.generate(prompts, max_new_tokens=max_new_tokens, **kw)

    def generate_traced(self, prompts: Sequence[str], max_new_tokens: int = 24, **kw: Any) -> Any:
        self._note(prompts, max_new_tokens)
        return self._lm.generate_traced(prompts, max_new_tokens=max_new_tokens, **kw)


def test_cjk_prompts_get_the_longer_budget_and_the_same_answers_alone_or_batched(wm: WorkingMemory) -> None:
    lm = _Budgets(LeanLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu"))
    agent = Agent(wm, lm, thresholds=PolicyThresholds())
    scopes = agent.scopes("default")
    questions = [*ENGLISH, *CHINESE]
    together = agent.collector.collect(questions, scopes)
    assert lm.seen and any(has_cjk(p) for p in lm.seen) and any(not has_cjk(p) for p in lm.seen)
    for prompt, budgets in lm.seen.items():
        assert budgets == ({24} if has_cjk(prompt) else {12}), prompt
    for question, batched in zip(questions, together, strict=True):
        alone = agent.collector.collect([question], scopes)[0]
        assert (alone.model and alone.model.text) == (batched.model and batched.model.text)
        assert (alone.rag and alone.rag.text) == (batched.rag and batched.rag.text)
        assert (
            alone.familiarity == batched.familiarity
            or abs((alone.familiarity or 0) - (batched.familiarity or 0)) < 1e-5
        )
