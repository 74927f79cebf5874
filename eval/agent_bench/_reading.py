"""How well an interpreter reads told edits: held-out free phrasings and the schema's own templates, apart.

For each test EDIT of the world the interpreter reads (never applies) two sentences: the edit in one of its
relation's held-out free phrasings (:mod:`eval.agent_bench._free_phrasings`, cycling per edit) and in the
relation's first schema phrasing (:func:`edit_statement`). A reading is *correct* when one of its claims is
the edit's triple, or that triple's schema inverse ("Y supervised X" for "X's advisor is Y"; the controller
derives the other direction). Figures:

- ``tell_parse_rate`` / ``template_parse_rate``: share of sentences read into the correct triple;
- ``tell_wrong_rate``: share of free sentences read into a claim that is not the edit's triple (it would be
  applied wrongly); ``tell_suggested_rate``: read no claim but offered a suggestion; the rest read nothing;
- ``tell_ms_p50`` / ``tell_ms_p95``: wall time of :meth:`Interpreter.interpret` per free sentence.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eval.agent_bench._free_phrasings import free_statement
from eval.agent_bench._questions import edit_statement
from kg import Entity, EntityLinker, Schema, normalize_mention
from memory import Triple
from tools.errors import FactagentError

if TYPE_CHECKING:
    from agent.tell import Interpretation, Interpreter
    from eval.world._schema import Edit, World

__all__ = ["WorldFacts", "is_told_triple", "reading_bench", "told_edits", "world_linker"]


@dataclass(frozen=True)
class _Fact:
    triple: Triple


class WorldFacts:
    """World facts as a fact source for entity types (``facts(subject, relation, obj)``)."""

    def __init__(self, triples: Sequence[Triple]) -> None:
        self._by_subject: dict[str, list[_Fact]] = {}
        self._by_object: dict[str, list[_Fact]] = {}
        for t in triples:
            self._by_subject.setdefault(t.subject, []).append(_Fact(t))
            self._by_object.setdefault(t.object, []).append(_Fact(t))

    def facts(self, subject: str | None = None, relation: str | None = None, obj: str | None = None) -> list[_Fact]:
        pool = self._by_subject.get(subject, []) if subject is not None else self._by_object.get(obj or "", [])
        return [
            f for f in pool
            if (relation is None or f.triple.relation == relation) and (obj is None or f.triple.object == obj)
        ]  # fmt: skip


def world_linker(world: World, *, everything: bool = False) -> tuple[EntityLinker, WorldFacts]:
    """A linker and fact source over what the agent's graph holds after loading the world: the UNKNOWN
    facts (``everything=True``: every world fact, an upper bound where every told name is known)."""
    facts = [f for f in world.facts if everything or f.split == "unknown"]
    triples = [Triple(f.subject, f.relation, f.object) for f in facts]
    labels = sorted({n for t in triples for n in (t.subject, t.object)})
    return EntityLinker([Entity(f"urn:world:{i}", n) for i, n in enumerate(labels)]), WorldFacts(triples)


def told_edits(world: World) -> list[Edit]:
    """The world's EDITS behind test edit questions, in id order."""
    ids = {q.edit_id for q in world.questions if q.kind == "edit" and q.split == "test"}
    return sorted((e for e in world.edits if e.id in ids), key=lambda e: e.id)


def is_told_triple(schema: Schema, told: Triple, read: Triple) -> bool:
    """``read`` is ``told``, or ``told`` stated from the other end: through a schema inverse, or with the names
    swapped when the relation is symmetric (``x spouse y`` is ``y spouse x``: the graph stores both)."""
    same = normalize_mention
    if read.relation == told.relation:
        if same(read.subject) == same(told.subject) and same(read.object) == same(told.object):
            return True
        swapped = same(read.subject) == same(told.object) and same(read.object) == same(told.subject)
        return swapped and schema.relation(told.relation).symmetric
    if read.relation in schema.relation(told.relation).inverses:
        return same(read.subject) == same(told.object) and same(read.object) == same(told.subject)
    return False


def _interpret(interpreter: Interpreter, text: str) -> Interpretation | None:
    try:
        return interpreter.interpret(text)
    except FactagentError:  # a contradictory or invalid reading: nothing would be applied
        return None


def reading_bench(world: World, interpreter: Interpreter, schema: Schema) -> dict[str, Any]:
    """Read the test edits in free and template phrasings (see the module docstring); nothing is written."""
    edits = told_edits(world)
    correct = wrong = suggested = template_correct = 0
    times: list[float] = []
    per_relation: dict[str, list[int]] = {}
    for i, edit in enumerate(edits):
        told = Triple(edit.subject, edit.relation, edit.new_object)
        started = time.perf_counter()
        reading = _interpret(interpreter, free_statement(edit, i))
        times.append(time.perf_counter() - started)
        claims = [c.triple for c in reading.claims] if reading is not None else []
        ok = any(is_told_triple(schema, told, t) for t in claims)
        correct += ok
        wrong += bool(claims) and not ok
        suggested += not claims and reading is not None and bool(reading.suggestions)
        per_relation.setdefault(edit.relation, [0, 0])[0] += ok
        per_relation[edit.relation][1] += 1
        template = _interpret(interpreter, edit_statement(world, edit))
        template_correct += template is not None and any(
            is_told_triple(schema, told, c.triple) for c in template.claims
        )
    n = max(1, len(edits))
    times.sort()
    return {
        "edits": len(edits),
        "tell_parse_rate": round(correct / n, 4),
        "tell_wrong_rate": round(wrong / n, 4),
        "tell_suggested_rate": round(suggested / n, 4),
        "template_parse_rate": round(template_correct / n, 4),
        "tell_ms_p50": round(1000 * statistics.median(times), 2) if times else 0.0,
        "tell_ms_p95": round(1000 * times[int(0.95 * (len(times) - 1))], 2) if times else 0.0,
        "tell_parse_rate_per_relation": {r: round(c / t, 3) for r, (c, t) in sorted(per_relation.items())},
    }
