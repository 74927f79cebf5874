"""The agent benchmark (``factagent agent-bench``): routing, told edits and poisoning on the reference world."""

from eval.agent_bench._bench import AgentBenchResult, rates, run_agent_bench
from eval.agent_bench._questions import BenchQuestion, edit_statement, sample_questions, statement

__all__ = [
    "AgentBenchResult",
    "BenchQuestion",
    "edit_statement",
    "rates",
    "run_agent_bench",
    "sample_questions",
    "statement",
]
