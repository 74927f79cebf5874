"""The relation schema: OWL axioms read from a Turtle file into typed records.

Nothing about relations is hard-coded in Python: ``kg/schema/world.ttl`` declares each relation as an
``owl:ObjectProperty`` in the ``rel:`` namespace, with ``owl:FunctionalProperty``,
``owl:SymmetricProperty``, ``owl:inverseOf``, ``rdfs:subPropertyOf [ owl:inverseOf r ]`` (a one-way
inverse rule) and ``owl:propertyChainAxiom ( a b )`` (composition). :func:`load_schema` turns those into
:class:`RelationSpec` values that the graph and the conflict detector read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rdflib import Graph
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, SKOS
from rdflib.term import BNode, Node, URIRef

from kg._vocab import FA, REL, WD
from tools.errors import ConfigError, InvalidInputError

__all__ = ["RelationSpec", "Schema", "load_schema"]

logger = logging.getLogger(__name__)

# Axioms this reader understands; any other predicate on a relation is ignored (labels, comments, ...).
_KNOWN_TYPES = {OWL.ObjectProperty, OWL.FunctionalProperty, OWL.SymmetricProperty}


@dataclass(frozen=True)
class RelationSpec:
    """One relation and the axioms about it.

    Attributes:
        id: local name in the ``rel:`` namespace, as used in :class:`memory.Triple` (``"company_ceo"``).
        iri: the full IRI.
        label: human name (``rdfs:label``).
        functional: at most one object per subject at a time.
        symmetric: ``x r y`` entails ``y r x``.
        inverses: ids ``q`` with ``r owl:inverseOf q`` (declared either way round): ``x r y <=> y q x``.
        inverse_of_super: ids ``q`` such that ``r ⊑ q⁻¹``: ``x r y => y q x`` (not back).
        chains: pairs ``(a, b)`` with ``a ∘ b ⊑ r``: ``x a y, y b z => x r z``.
        wikidata: the Wikidata property id it matches (``"P22"``), if any.
        templates: phrasings of a question or prompt about it (``fa:template``, ``{}`` = the subject), for
            relation linking.
        zh_templates: its Chinese phrasings (``fa:template`` literals tagged ``@zh``): questions end in "？",
            clozes ("{}的首都是") read statements. Kept apart from ``templates`` so English linking and the
            model's English paraphrases never see them.
        domain: the class of its subjects (``rdfs:domain``, local name in the ``fa:`` namespace: ``"Company"``),
            ``None`` when undeclared (any subject).
        range: the class of its objects (``rdfs:range``), ``None`` when undeclared.
    """

    id: str
    iri: str
    label: str
    functional: bool = False
    symmetric: bool = False
    inverses: tuple[str, ...] = ()
    inverse_of_super: tuple[str, ...] = ()
    chains: tuple[tuple[str, str], ...] = ()
    wikidata: str | None = None
    templates: tuple[str, ...] = ()
    zh_templates: tuple[str, ...] = ()
    domain: str | None = None
    range: str | None = None


@dataclass(frozen=True)
class Schema:
    """All relations of a knowledge graph, looked up by id, IRI or Wikidata property id.

    Example:
        >>> schema = load_schema()
        >>> schema.relation("P22").id
        'person_father'
    """

    relations: tuple[RelationSpec, ...]
    disjoint_groups: tuple[frozenset[str], ...] = ()  # classes of one ``owl:AllDisjointClasses`` share no entity
    _index: dict[str, RelationSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, RelationSpec] = {}
        for spec in self.relations:
            for key in (spec.id, spec.iri, spec.wikidata):
                if key is None:
                    continue
                if key in index and index[key] is not spec:
                    raise ConfigError(f"schema: {key!r} names two relations ({index[key].id}, {spec.id})")
                index[key] = spec
        object.__setattr__(self, "_index", index)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(spec.id for spec in self.relations)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._index

    def relation(self, key: str) -> RelationSpec:
        """The relation with this id (``"creator"``), IRI or Wikidata id (``"P170"``).

        Raises:
            InvalidInputError: no such relation.
        """
        spec = self._index.get(key) if isinstance(key, str) else None
        if spec is None:
            raise InvalidInputError(f"unknown relation {key!r}; known: {', '.join(self.ids)}")
        return spec

    def templates(self) -> dict[str, tuple[str, ...]]:
        """Relation id -> its ``fa:template`` phrasings (relations without any are left out)."""
        return {spec.id: spec.templates for spec in self.relations if spec.templates}

    def zh_templates(self) -> dict[str, tuple[str, ...]]:
        """Relation id -> its Chinese ``fa:template`` phrasings (``@zh``; relations without any are left out)."""
        return {spec.id: spec.zh_templates for spec in self.relations if spec.zh_templates}

    def disjoint(self, a: str, b: str) -> bool:
        """Whether classes ``a`` and ``b`` (``fa:`` local names) are declared to share no entity."""
        return a != b and any(a in group and b in group for group in self.disjoint_groups)

    def inverse_sources(self, relation_id: str) -> tuple[RelationSpec, ...]:
        """Relations ``q`` with ``q ⊑ r⁻¹`` for ``r = relation_id``: their facts ``x q y`` entail ``y r x``."""
        return tuple(spec for spec in self.relations if relation_id in spec.inverse_of_super)


def load_schema(path: str | Path | None = None) -> Schema:
    """Read a relation schema from an OWL Turtle file.

    Args:
        path: the Turtle file; ``None`` reads the packaged ``kg/schema/world.ttl``.

    Returns:
        The schema, relations in id order.

    Raises:
        ConfigError: the file is missing or not valid Turtle, a relation lies outside the ``rel:``
            namespace or has no label, an axiom names a property that is not declared, or an axiom has
            an unsupported shape (a chain that is not two properties long, a named super-property).
    """
    graph = Graph()
    try:
        if path is None:
            data = resources.files("kg").joinpath("schema/world.ttl").read_text(encoding="utf-8")
            source = "kg/schema/world.ttl"
        else:
            data = Path(path).read_text(encoding="utf-8")
            source = str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read schema file {path}: {exc}") from exc
    try:
        graph.parse(data=data, format="turtle")
    except Exception as exc:  # rdflib raises several unrelated types (BadSyntax, ValueError, ...) for bad Turtle
        raise ConfigError(f"schema {source} is not valid Turtle: {exc}") from exc
    return _build(graph, source)


def _build(graph: Graph, source: str) -> Schema:
    declared: dict[URIRef, str] = {}
    for subject in graph.subjects(RDF.type, OWL.ObjectProperty):
        if not isinstance(subject, URIRef) or not str(subject).startswith(str(REL)):
            raise ConfigError(f"schema {source}: property {subject} is not in the rel: namespace {REL}")
        local = str(subject)[len(str(REL)) :]
        if not local or not local.replace("_", "a").isalnum():
            raise ConfigError(f"schema {source}: bad relation id {local!r}")
        declared[subject] = local
    if not declared:
        raise ConfigError(f"schema {source} declares no owl:ObjectProperty")

    def name(node: Node, where: str) -> str:
        if not isinstance(node, URIRef) or node not in declared:
            raise ConfigError(f"schema {source}: {where} names {node}, which is not a declared owl:ObjectProperty")
        return declared[node]

    inverses: dict[str, set[str]] = {rid: set() for rid in declared.values()}
    for subject, obj in graph.subject_objects(OWL.inverseOf):
        if isinstance(subject, BNode):
            continue  # the [ owl:inverseOf r ] of a subPropertyOf rule, read below
        a, b = name(subject, "owl:inverseOf"), name(obj, f"owl:inverseOf of {subject}")
        inverses[a].add(b)
        inverses[b].add(a)
    for typed in (OWL.FunctionalProperty, OWL.SymmetricProperty):
        for subject in graph.subjects(RDF.type, typed):
            name(subject, f"a {typed}")

    specs = []
    for node, rid in declared.items():
        labels = list(graph.objects(node, RDFS.label))
        if len(labels) != 1:
            raise ConfigError(f"schema {source}: {rid} needs exactly one rdfs:label, has {len(labels)}")
        supers = []
        for parent in graph.objects(node, RDFS.subPropertyOf):
            targets = list(graph.objects(parent, OWL.inverseOf)) if isinstance(parent, BNode) else []
            if len(targets) != 1:
                raise ConfigError(
                    f"schema {source}: {rid} rdfs:subPropertyOf must be [ owl:inverseOf <relation> ], got {parent}"
                )
            supers.append(name(targets[0], f"subPropertyOf of {rid}"))
        chains = []
        for head in graph.objects(node, OWL.propertyChainAxiom):
            try:
                members = list(Collection(graph, head))
            except Exception as exc:  # a malformed rdf:List surfaces as assorted rdflib errors
                raise ConfigError(f"schema {source}: {rid} has a malformed property chain: {exc}") from exc
            if len(members) != 2:
                raise ConfigError(f"schema {source}: {rid} has a property chain of {len(members)} (only 2 supported)")
            chains.append((name(members[0], f"chain of {rid}"), name(members[1], f"chain of {rid}")))
        matches = [str(m)[len(str(WD)) :] for m in graph.objects(node, SKOS.exactMatch) if str(m).startswith(str(WD))]
        if len(matches) > 1:
            raise ConfigError(f"schema {source}: {rid} matches several Wikidata properties {matches}")
        phrasings = list(graph.objects(node, FA.template))
        templates = sorted(str(t) for t in phrasings if getattr(t, "language", None) != "zh")
        zh_templates = sorted(str(t) for t in phrasings if getattr(t, "language", None) == "zh")
        if any("{}" not in t for t in (*templates, *zh_templates)):
            raise ConfigError(f"schema {source}: every fa:template of {rid} needs a '{{}}' slot for the subject")
        specs.append(
            RelationSpec(
                id=rid,
                iri=str(node),
                label=str(labels[0]),
                functional=(node, RDF.type, OWL.FunctionalProperty) in graph,
                symmetric=(node, RDF.type, OWL.SymmetricProperty) in graph,
                inverses=tuple(sorted(inverses[rid])),
                inverse_of_super=tuple(sorted(supers)),
                chains=tuple(sorted(chains)),
                wikidata=matches[0] if matches else None,
                templates=tuple(templates),
                zh_templates=tuple(zh_templates),
                domain=_class_of(graph, node, RDFS.domain, source),
                range=_class_of(graph, node, RDFS.range, source),
            )
        )
    schema = Schema(tuple(sorted(specs, key=lambda s: s.id)), _disjoint_groups(graph, source))
    logger.debug("schema %s: %d relations", source, len(schema.relations))
    return schema


def _class_local(node: Node, where: str, source: str) -> str:
    if not isinstance(node, URIRef) or not str(node).startswith(str(FA)) or not str(node)[len(str(FA)) :].isalnum():
        raise ConfigError(f"schema {source}: {where} must be a class in the fa: namespace {FA}, got {node}")
    return str(node)[len(str(FA)) :]


def _class_of(graph: Graph, node: Node, axiom: URIRef, source: str) -> str | None:
    """The one ``rdfs:domain`` / ``rdfs:range`` class of a relation, ``None`` when it declares none."""
    classes = list(graph.objects(node, axiom))
    if len(classes) > 1:
        raise ConfigError(f"schema {source}: {node} declares {len(classes)} classes as {axiom} (at most one)")
    return _class_local(classes[0], f"{axiom} of {node}", source) if classes else None


def _disjoint_groups(graph: Graph, source: str) -> tuple[frozenset[str], ...]:
    """The member classes of every ``owl:AllDisjointClasses`` axiom."""
    groups = []
    for axiom in graph.subjects(RDF.type, OWL.AllDisjointClasses):
        try:
            members = [_class_local(m, "an owl:AllDisjointClasses member", source) for head in
                       graph.objects(axiom, OWL.members) for m in Collection(graph, head)]  # fmt: skip
        except ConfigError:
            raise
        except Exception as exc:  # a malformed rdf:List surfaces as assorted rdflib errors
            raise ConfigError(f"schema {source}: malformed owl:AllDisjointClasses: {exc}") from exc
        if len(members) < 2:
            raise ConfigError(f"schema {source}: owl:AllDisjointClasses needs at least two members")
        groups.append(frozenset(members))
    return tuple(sorted(groups, key=sorted))
