"""Concepts of the reference world (issue 22): a class hierarchy, definitions, instance-of facts and edits.

The classes, their parents (rdfs:subClassOf) and one-sentence definitions are the project's own text
(``source/concepts.json``); a concept's instances are found among the world's facts by its rule (relation,
the entity's role in it, and the object it must have: ``landmark in Germany`` = subjects of
``landmark_in_country`` with object ``Germany``) plus the instances of its subclasses.

Facts (:class:`~eval.world._slice_records.SliceFact`, slice ``concepts``):

* ``definition``: subject the concept's label, answer its definition; KNOWN or held out by a seeded hash;
* ``instance_of``: "Is X a <concept>?" -> ``yes`` for up to ``instances_per_concept`` instances and ``no`` for
  the non-instances. A non-instance is a sibling's instance under the same functional relation (a landmark
  in France for ``landmark in Germany``) or an entity of another root class. An instance-of fact whose rule
  names an object (``landmark in Germany``) restates a world fact and takes that fact's split (the English
  training already states a KNOWN one; an UNKNOWN one must not be taught through a concept); so does a hard
  non-instance, from its own fact.

Edits (``sibling`` and ``distant``): a KNOWN concept's definition replaced by a sibling's (same parent) or by
that of a concept under another root, as in ConceptEdit.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eval.world._build import WorldConfig, stable_unit
from eval.world._schema import Fact, FactSplit
from eval.world._slice_records import Concept, Prompted, SliceEdit, SliceFact
from eval.world._source import SOURCE_DIR
from tools.errors import WorldFormatError

_SPEC_FILE = "concepts.json"
_DEFINITION_UNKNOWN = 0.2  # held-out definitions; most stay KNOWN so that >= 100 edits have a known target


@dataclass(frozen=True)
class ConceptSpec:
    """One class as written in ``source/concepts.json``."""

    id: str
    label: str
    parent: str | None
    definition: str
    rule: dict[str, str] | None


def load_specs(source_dir: Path = SOURCE_DIR) -> tuple[ConceptSpec, ...]:
    """Read the concept specs; raises WorldFormatError on a cycle or an unknown parent."""
    raw = json.loads((source_dir / _SPEC_FILE).read_text(encoding="utf-8"))["concepts"]
    specs = tuple(
        ConceptSpec(id=c["id"], label=c["label"], parent=c["parent"], definition=c["definition"], rule=c.get("rule"))
        for c in raw
    )
    ids = {s.id for s in specs}
    parent = {s.id: s.parent for s in specs}
    for spec in specs:
        if spec.parent is not None and spec.parent not in ids:
            raise WorldFormatError(f"{_SPEC_FILE}: concept {spec.id} has unknown parent {spec.parent!r}")
        seen, node = {spec.id}, spec.parent
        while node is not None:
            if node in seen:
                raise WorldFormatError(f"{_SPEC_FILE}: cycle in the class hierarchy through {spec.id}")
            seen.add(node)
            node = parent[node]
    return specs


def article(label: str) -> str:
    """``a`` or ``an`` before ``label``."""
    return "an" if label[:1].lower() in "aeiou" else "a"


def root_of(spec_id: str, parent: dict[str, str | None]) -> str:
    """The root class above ``spec_id``."""
    while (up := parent[spec_id]) is not None:
        spec_id = up
    return spec_id


class _Members:
    """Instances of every concept, with the world fact behind each (for the split)."""

    def __init__(self, specs: tuple[ConceptSpec, ...], facts: tuple[Fact, ...]) -> None:
        self.parent = {s.id: s.parent for s in specs}
        self.children: dict[str, list[str]] = defaultdict(list)
        for s in specs:
            if s.parent:
                self.children[s.parent].append(s.id)
        self.own: dict[str, dict[str, Fact]] = {}
        for s in specs:
            self.own[s.id] = {}
            if s.rule is None:
                continue
            for f in facts:
                if f.relation != s.rule["relation"] or ("object" in s.rule and f.object != s.rule["object"]):
                    continue
                entity = f.subject if s.rule["role"] == "subject" else f.object
                if entity not in self.own[s.id] or f.split == "unknown":
                    self.own[s.id][entity] = f  # an entity is UNKNOWN-backed if any of its facts is
        self.by_rule = {s.id: s.rule for s in specs}

    def all(self, concept: str) -> set[str]:
        out = set(self.own[concept])
        for child in self.children[concept]:
            out |= self.all(child)
        return out

    def backing(self, concept: str, entity: str) -> Fact | None:
        """The world fact that makes ``entity`` an instance when the rule names an object (else ``None``)."""
        rule = self.by_rule[concept]
        if rule is None or "object" not in rule:
            return None
        return self.own[concept].get(entity)


def build_concepts(
    facts: tuple[Fact, ...], config: WorldConfig, instances_per_concept: int = 8, n_non_instances: int = 4
) -> tuple[tuple[Concept, ...], tuple[SliceFact, ...]]:
    """The concepts and their definition and instance-of facts (ids ``c00000``... in that order)."""
    specs = load_specs()
    members = _Members(specs, facts)
    roots = {s.id: root_of(s.id, members.parent) for s in specs}
    root_members = {r: members.all(r) for r in set(roots.values())}
    single_root = {
        e: r for r, es in root_members.items() for e in es if sum(e in x for x in root_members.values()) == 1
    }
    concepts: list[Concept] = []
    out: list[SliceFact] = []
    for spec in specs:
        rng = random.Random(f"{config.seed}:concept:{spec.id}")
        mine = sorted(members.all(spec.id))
        if len(mine) < 5:
            raise WorldFormatError(f"concept {spec.id} has {len(mine)} instances in the world (needs >= 5)")
        chosen = sorted(rng.sample(mine, k=min(instances_per_concept, len(mine))))
        negatives = _non_instances(spec, members, roots, single_root, set(mine), rng, n_non_instances)
        concepts.append(
            Concept(
                id=spec.id,
                label=spec.label,
                parent=spec.parent,
                definition=spec.definition,
                instances=tuple(chosen),
                non_instances=tuple(negatives),
            )
        )
        out.append(_definition_fact(spec, config))
        for entity in chosen:
            backing = members.backing(spec.id, entity)
            out.append(_instance_fact(spec, entity, True, config, forced=backing.split if backing else None))
        for entity in negatives:
            out.append(_instance_fact(spec, entity, False, config, forced=_sibling_split(members, spec, entity)))
    return tuple(concepts), tuple(replace(f, id=f"c{i:05d}") for i, f in enumerate(out))


def _sibling_split(members: _Members, spec: ConceptSpec, entity: str) -> FactSplit | None:
    """The split of the world fact that makes ``entity`` a sibling's instance (None when there is none).

    "X is not a landmark in Germany" follows from X's own country fact: it takes that fact's split.
    """
    if spec.parent is None:
        return None
    for sibling in members.children[spec.parent]:
        fact = members.backing(sibling, entity)
        if fact is not None and sibling != spec.id:
            return fact.split
    return None


def _non_instances(
    spec: ConceptSpec,
    members: _Members,
    roots: dict[str, str],
    single_root: dict[str, str],
    mine: set[str],
    rng: random.Random,
    n: int,
) -> list[str]:
    """Half hard negatives (a sibling's instances under the same functional rule), the rest another root's."""
    hard: list[str] = []
    if spec.rule and "object" in spec.rule and spec.parent:
        for sibling in members.children[spec.parent]:
            rule = members.by_rule[sibling]
            if sibling != spec.id and rule and rule["relation"] == spec.rule["relation"]:
                hard += [e for e in members.own[sibling] if e not in mine]
    picked = rng.sample(sorted(set(hard)), k=min(n // 2, len(set(hard))))
    others = sorted(e for e, r in single_root.items() if r != roots[spec.id] and e not in mine)
    picked += rng.sample(others, k=n - len(picked))
    return sorted(picked)


def _definition_fact(spec: ConceptSpec, config: WorldConfig) -> SliceFact:
    a, label = article(spec.label), spec.label
    split: FactSplit = "unknown" if stable_unit(config.seed, "concept-def", spec.id) < _DEFINITION_UNKNOWN else "known"
    return SliceFact(
        id="",
        slice="concepts",
        category="definition",
        subject=label,
        answer=spec.definition,
        split=split,
        cloze=(f"{a.capitalize()} {label} is", f"The word {label} means"),
        questions=(f"What is {a} {label}?", f"What is the definition of {a} {label}?"),
        heldout=(f"How would you define {a} {label}?", f"What does the term {label} mean?"),
        statement=f"{a.capitalize()} {label} is {spec.definition}.",
        key=spec.definition,
    )


def _instance_fact(
    spec: ConceptSpec, entity: str, member: bool, config: WorldConfig, forced: FactSplit | None
) -> SliceFact:
    """An instance-of fact; ``forced`` is the split of the world fact it restates, if any."""
    a, label = article(spec.label), spec.label
    hashed = stable_unit(config.seed, "concept-inst", spec.id, entity) < config.unknown_fraction
    unknown = forced == "unknown" if forced else hashed
    return SliceFact(
        id="",
        slice="concepts",
        category="instance_of",
        subject=entity,
        answer="yes" if member else "no",
        split="unknown" if unknown else "known",
        cloze=(),
        questions=(f"Is {entity} {a} {label}?", f"Is {entity} an example of {a} {label}?"),
        heldout=(f"Would you call {entity} {a} {label}?", f"Does {entity} belong to the class {label}?"),
        statement=f"{entity} is {'' if member else 'not '}{a} {label}.",
        key=f"{a} {label}",
    )


def concept_edits(
    concepts: tuple[Concept, ...], facts: tuple[SliceFact, ...], config: WorldConfig, n_locality: int = 5
) -> tuple[SliceEdit, ...]:
    """Two edits per KNOWN definition: a sibling's definition (when it has a sibling) and a distant one's."""
    parent = {c.id: c.parent for c in concepts}
    roots = {c.id: root_of(c.id, parent) for c in concepts}
    by_label = {f.subject: f for f in facts if f.category == "definition"}
    known = [c for c in concepts if by_label[c.label].split == "known"]
    rng = random.Random(f"{config.seed}:concept-edits")
    edits: list[SliceEdit] = []
    for concept in known:
        fact = by_label[concept.label]
        siblings = [c for c in concepts if c.parent == concept.parent and c.id != concept.id and c.parent]
        distant = [c for c in concepts if roots[c.id] != roots[concept.id]]
        others = [c for c in known if c.id != concept.id]
        for kind, pool in (("sibling", siblings), ("distant", distant)):
            if not pool:
                continue
            source = rng.choice(pool)
            local = rng.sample(others, k=min(n_locality, len(others)))
            edits.append(
                SliceEdit(
                    id=f"ce{len(edits):04d}",
                    fact_id=fact.id,
                    slice="concepts",
                    category="definition",
                    subject=concept.label,
                    old_answer=concept.definition,
                    new_answer=source.definition,
                    kind="sibling" if kind == "sibling" else "distant",
                    source=source.id,
                    prompt=fact.cloze[0],
                    paraphrases=fact.questions + fact.heldout,
                    locality=tuple(Prompted(text=by_label[c.label].questions[0], answer=c.definition) for c in local),
                )
            )
    return tuple(edits)


def concepts_turtle(concepts: tuple[Concept, ...]) -> str:
    """The hierarchy as OWL classes in Turtle (``fa:concept/<id>``, rdfs:subClassOf, skos:definition)."""
    lines = [
        "# Concept hierarchy of the factagent reference world (generated by eval/world/_concepts.py).",
        "@prefix owl:  <http://www.w3.org/2002/07/owl#> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
        "@prefix cls:  <https://factagent.dev/concept/> .",
        "",
    ]
    for c in concepts:
        body = [f"cls:{c.id} a owl:Class", f"    rdfs:label {_literal(c.label)}"]
        if c.parent:
            body.append(f"    rdfs:subClassOf cls:{c.parent}")
        body.append(f"    skos:definition {_literal(c.definition)}")
        lines.append(" ;\n".join(body) + " .")
    return "\n".join(lines) + "\n"


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False) + "@en"


def concept_counts(
    concepts: tuple[Concept, ...], facts: tuple[SliceFact, ...], edits: tuple[SliceEdit, ...]
) -> dict[str, Any]:
    """Manifest counts of the concept slice."""
    mine = [f for f in facts if f.slice == "concepts"]
    return {
        "concepts": len(concepts),
        "definitions_known": sum(f.category == "definition" and f.split == "known" for f in mine),
        "instance_of_known": sum(f.category == "instance_of" and f.split == "known" for f in mine),
        "instance_of_unknown": sum(f.category == "instance_of" and f.split == "unknown" for f in mine),
        "edits_sibling": sum(e.kind == "sibling" for e in edits),
        "edits_distant": sum(e.kind == "distant" for e in edits),
    }
