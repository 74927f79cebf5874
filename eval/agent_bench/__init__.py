"""The agent benchmark (``factagent agent-bench``): routing, told edits and poisoning on the reference world."""

from eval.agent_bench._bench import AgentBenchResult, rates, run_agent_bench
from eval.agent_bench._free_phrasings import free_statement
from eval.agent_bench._questions import BenchQuestion, edit_statement, sample_questions, statement
from eval.agent_bench._reading import WorldFacts, is_told_triple, reading_bench, told_edits, world_linker

__all__ = [
    "AgentBenchResult",
    "BenchQuestion",
    "WorldFacts",
    "edit_statement",
    "free_statement",
    "is_told_triple",
    "rates",
    "reading_bench",
    "run_agent_bench",
    "sample_questions",
    "statement",
    "told_edits",
    "world_linker",
]
