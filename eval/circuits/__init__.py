"""Knowledge-circuit evaluation on the reference world: cases, the faithfulness benchmark."""

from eval.circuits._cases import fact_case, find_fact, relation_facts

__all__ = ["fact_case", "find_fact", "relation_facts"]
