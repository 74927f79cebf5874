"""Evaluation: the reference world (``eval.world``), answer grading, the audit and the benchmarks.

Stands on the agent core; the entry points (``agent.cli``, ``agent.server``) use only the public names of
``eval`` and its subpackages.
"""

from eval._normalize import exact_match, normalize_answer

__all__ = ["exact_match", "normalize_answer"]
