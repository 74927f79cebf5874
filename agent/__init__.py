"""The decision-maker: ask (route to KG, memory, the model, or abstain), tell, rollback; CLI, chat and tools."""

from agent._agent import Agent, AskGuards
from agent._answer import Answer, ModelView, Signals
from agent._concepts import ConceptAnswer, ConceptDesk, ConceptTell
from agent._guard import GUARD_FILE, JUDGE_FILE, EmbeddingJudge, SafetyJudge
from agent._policy import PolicyThresholds
from agent._work import WorkCounts

__all__ = [  # noqa: RUF022 -- plain sorted() order, which tests/test_package.py checks
    "Agent",
    "Answer",
    "AskGuards",
    "ConceptAnswer",
    "ConceptDesk",
    "ConceptTell",
    "EmbeddingJudge",
    "GUARD_FILE",
    "JUDGE_FILE",
    "ModelView",
    "PolicyThresholds",
    "SafetyJudge",
    "Signals",
    "WorkCounts",
]
