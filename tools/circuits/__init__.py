"""Knowledge circuits: which heads, MLPs and edges carry a fact (EAP-IG on nnsight), and their faithfulness."""

from tools.circuits._compare import CircuitDiff, compare_circuits
from tools.circuits._discover import DEFAULT_FRACTIONS, Ablation, Circuit, CircuitFinder, FactCase, NodeRole
from tools.circuits._eap import Attribution, attribute, circuit_metrics
from tools.circuits._graph import Edge, Graph, Node, Port
from tools.circuits._lens import LayerLens, layer_lens
from tools.circuits._locate import CaseSource, CircuitLocator
from tools.circuits._render import circuit_record, plot_circuit, plot_faithfulness, plot_lens
from tools.circuits._runner import GraphRunner, RunResult
from tools.circuits._select import select_edges

__all__ = [
    "DEFAULT_FRACTIONS",
    "Ablation",
    "Attribution",
    "CaseSource",
    "Circuit",
    "CircuitDiff",
    "CircuitFinder",
    "CircuitLocator",
    "Edge",
    "FactCase",
    "Graph",
    "GraphRunner",
    "LayerLens",
    "Node",
    "NodeRole",
    "Port",
    "RunResult",
    "attribute",
    "circuit_metrics",
    "circuit_record",
    "compare_circuits",
    "layer_lens",
    "plot_circuit",
    "plot_faithfulness",
    "plot_lens",
    "select_edges",
]
