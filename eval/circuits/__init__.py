"""Knowledge-circuit evaluation on the reference world: cases, per-relation circuits, the benchmark."""

from eval.circuits._bench import RelationCircuits, circuit_bench, relation_circuits, rome_layer_rows
from eval.circuits._cache import CACHE_VERSION, CircuitCache
from eval.circuits._cases import N_REFERENCE, fact_case, find_fact, relation_case_source, relation_facts

__all__ = [
    "CACHE_VERSION",
    "N_REFERENCE",
    "CircuitCache",
    "RelationCircuits",
    "circuit_bench",
    "fact_case",
    "find_fact",
    "relation_case_source",
    "relation_circuits",
    "relation_facts",
    "rome_layer_rows",
]
