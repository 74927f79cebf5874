"""The import graph of the five packages, checked against the floors of the house (issue 27).

The floors, lowest first (a module may import its own floor's unit and any floor below it, nothing above and
no other unit of its own floor)::

    base (tools.errors, tools.base)  <  tools | memory | kg  <  agent core  <  eval  <  entry points

- *base*: the shared vocabulary every package stands on: the error hierarchy and the shared records
  (``Triple``, ``Scope``, the time validation, the SQLite ``Database``);
- *tools*, *memory*, *kg*: peers, none imports another;
- *agent core*: everything in ``agent/`` but the entry points;
- *eval*: the reference world and the benchmarks, standing on the agent core;
- *entry points*: the CLI (``agent.cli``, ``agent.__main__``), the server (``agent.server``) and its HTTP
  client (``agent.client``, which shares the server's wire schemas).

Besides direction, no module imports another package's private module (a dotted name with a part starting
with ``_`` below the top-level package, e.g. ``eval.world._pipeline`` from ``agent.cli``); inside one top-level
package (``agent.cli`` using ``agent._policy``) private modules are shared freely.
Every import counts: at module level, inside functions and under ``TYPE_CHECKING`` (a type-only edge is still
an edge a reader follows).

Example:
    PYTHONPATH=. .venv/bin/python bench/import_graph.py          # counts per unit, then each violation
    PYTHONPATH=. .venv/bin/python bench/import_graph.py --json   # one JSON object
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["upward", "sideways", "private"]


@dataclass(frozen=True)
class Unit:
    """One node of the floor plan: modules whose dotted name starts with one of ``prefixes``.

    Attributes:
        name: the unit's label in reports.
        floor: 0 is the lowest; a unit may import units on lower floors only (and itself).
        prefixes: dotted module prefixes that belong to the unit; the longest matching prefix over all units
            decides (``tools.errors`` is in *base* though ``tools`` is in *tools*).
    """

    name: str
    floor: int
    prefixes: tuple[str, ...]


FLOORS: tuple[Unit, ...] = (
    Unit(name="base", floor=0, prefixes=("tools.errors", "tools.base")),
    Unit(name="tools", floor=1, prefixes=("tools",)),
    Unit(name="memory", floor=1, prefixes=("memory",)),
    Unit(name="kg", floor=1, prefixes=("kg",)),
    Unit(name="agent", floor=2, prefixes=("agent",)),
    Unit(name="eval", floor=3, prefixes=("eval",)),
    Unit(name="entry", floor=4, prefixes=("agent.cli", "agent.server", "agent.client", "agent.__main__")),
)


@dataclass(frozen=True)
class Edge:
    """One import statement: ``importer`` (a module) names ``target`` (a module or a name in one)."""

    importer: str
    target: str
    path: str
    line: int


@dataclass(frozen=True)
class Violation:
    """An edge that breaks the floor plan, and how."""

    kind: Kind
    edge: Edge
    source_unit: str
    target_unit: str


def unit_of(module: str, units: Sequence[Unit] = FLOORS) -> Unit | None:
    """The unit owning ``module`` by the longest matching prefix, or ``None`` for a foreign module."""
    best: tuple[int, Unit] | None = None
    for unit in units:
        for prefix in unit.prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), unit)
    return best[1] if best else None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def edges(root: Path, packages: Iterable[str]) -> list[Edge]:
    """Every absolute import in the ``.py`` files of ``packages`` under ``root`` (relative ones stay inside)."""
    found: dict[Edge, None] = {}  # ordered set: ``from m import a, b`` is one edge to ``m``
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            importer = _module_name(root, path)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            rel = str(path.relative_to(root))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        found[Edge(importer=importer, target=alias.name, path=rel, line=node.lineno)] = None
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    for alias in node.names:
                        # ``from eval.world import _pipeline`` names a private module as much as the dotted form
                        target = f"{node.module}.{alias.name}" if alias.name.startswith("_") else node.module
                        found[Edge(importer=importer, target=target, path=rel, line=node.lineno)] = None
    return list(found)


def _private(target: str) -> bool:
    """Whether ``target`` goes through a ``_``-named module below its top-level package."""
    return any(part.startswith("_") and not part.startswith("__") for part in target.split(".")[1:])


def violations(found: Iterable[Edge], units: Sequence[Unit] = FLOORS) -> list[Violation]:
    """The edges that go up a floor, sideways to a peer, or into another unit's private module."""
    out = []
    for edge in found:
        source, target = unit_of(edge.importer, units), unit_of(edge.target, units)
        if source is None or target is None or source == target:
            continue
        if target.floor > source.floor:
            out.append(Violation(kind="upward", edge=edge, source_unit=source.name, target_unit=target.name))
        elif target.floor == source.floor:
            out.append(Violation(kind="sideways", edge=edge, source_unit=source.name, target_unit=target.name))
        if edge.importer.split(".")[0] != edge.target.split(".")[0] and _private(edge.target):
            out.append(Violation(kind="private", edge=edge, source_unit=source.name, target_unit=target.name))
    return out


def counts(found: Sequence[Violation]) -> dict[str, dict[str, int]]:
    """``{unit: {kind: n}}`` for the units that break the plan."""
    table: dict[str, Counter[str]] = {}
    for v in found:
        table.setdefault(v.source_unit, Counter())[v.kind] += 1
    return {unit: dict(sorted(c.items())) for unit, c in sorted(table.items())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args(argv)
    found = violations(edges(args.root, ["agent", "memory", "tools", "kg", "eval"]))
    totals = dict(sorted(Counter(v.kind for v in found).items()))
    if args.json:
        json.dump({"totals": totals, "per_unit": counts(found)}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    for v in found:
        e = v.edge
        sys.stdout.write(f"{v.kind:8} {v.source_unit:>6} -> {v.target_unit:<6} {e.path}:{e.line} {e.target}\n")
    sys.stdout.write(f"per unit: {json.dumps(counts(found))}\ntotals: {json.dumps(totals)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
