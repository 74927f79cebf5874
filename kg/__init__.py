"""The knowledge graph: entities, an OWL relation schema, assertions in named graphs with provenance.

``KnowledgeGraph`` keeps each assertion in its own named graph (who, when, source, edit id, validity),
supersedes functional facts without deleting them, rolls edits back exactly, detects functional / inverse /
composition conflicts and answers lookups and multi-hop SPARQL property paths at any ``as_of`` time. Quads
live behind the ``TripleStore`` seam: ``SQLiteTripleStore`` (embedded, in the shared SQLite file),
``OxigraphTripleStore`` (embedded Oxigraph), ``MemoryTripleStore`` and ``SPARQLEndpointStore`` (any SPARQL
1.1 endpoint). ``EntityLinker`` and
``RelationLinker`` map question text to entities and relations.
"""

from kg._concepts import MAX_DEFINITION_CHARS, ConceptGraph, DefinitionChange, Membership, check_definition
from kg._conflicts import Conflict, ConflictKind
from kg._graph import KnowledgeGraph
from kg._linking import EntityLinker, Link, Mention, name_key, normalize_mention
from kg._memory_store import MemoryTripleStore
from kg._oxigraph_store import OxigraphTripleStore
from kg._records import WORLD_NAMESPACE, AddResult, Assertion, Entity, Provenance
from kg._relation_linking import RelationLink, RelationLinker
from kg._remote_store import SPARQLEndpointStore
from kg._schema import RelationSpec, Schema, load_schema
from kg._sqlite_store import SQLiteTripleStore
from kg._store import Quad, TripleStore
from kg._view import GraphView
from kg._vocab import ENT, FA, GRAPH, REL, entity_iri, iri

__all__ = [  # noqa: RUF022 -- plain sorted() order, which tests/test_package.py checks
    "AddResult",
    "Assertion",
    "ConceptGraph",
    "Conflict",
    "ConflictKind",
    "DefinitionChange",
    "ENT",
    "Entity",
    "EntityLinker",
    "FA",
    "GRAPH",
    "GraphView",
    "KnowledgeGraph",
    "Link",
    "MAX_DEFINITION_CHARS",
    "Membership",
    "MemoryTripleStore",
    "Mention",
    "OxigraphTripleStore",
    "Provenance",
    "Quad",
    "REL",
    "RelationLink",
    "RelationLinker",
    "RelationSpec",
    "SPARQLEndpointStore",
    "SQLiteTripleStore",
    "Schema",
    "TripleStore",
    "WORLD_NAMESPACE",
    "check_definition",
    "entity_iri",
    "iri",
    "load_schema",
    "name_key",
    "normalize_mention",
]
