"""The working memory a home holds: vector memory, knowledge graph, linkers and retriever over one database.

Part of the composition root (:mod:`agent.wiring`): :func:`open_working_memory` decides which implementation
backs each storage seam (embedded SQLite + FAISS + rdflib store, Oxigraph, Milvus, or a remote SPARQL endpoint).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Home
from agent.retrieval import HybridRetriever
from agent.zh_gate import ZhSubjectGate
from tools.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from kg import EntityLinker, KnowledgeGraph, RelationLinker, TripleStore
    from memory import Database, Embedder, VectorMemory

__all__ = ["WorkingMemory", "open_working_memory"]

logger = logging.getLogger(__name__)
DATABASE_FILE = "state.sqlite"


@dataclass
class WorkingMemory:
    """The vector memory, knowledge graph, linkers and retriever over one database."""

    db: Database
    memory: VectorMemory
    graph: KnowledgeGraph
    store: TripleStore
    entities: EntityLinker
    relations: RelationLinker
    retriever: HybridRetriever

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Memory and embedded-KG writes inside commit together (a remote KG commits on its own)."""
        with self.db.transaction(), self.store.transaction():
            yield

    entity_seq: int = 0  # the memory change-log entry the entity index has caught up with
    _sync_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _classes(self) -> frozenset[str]:
        """IRIs of the KG's concept classes (none when its schema has no concept relations)."""
        from kg import ConceptGraph

        try:
            return ConceptGraph(self.graph).class_iris()
        except InvalidInputError:  # a custom schema without concepts
            return frozenset()

    def refresh_entities(self) -> None:
        """Re-index the KG's entities in the linker (after a bulk load), each under the namespaces naming it.

        Concept classes are left out (``kg.ConceptGraph.class_iris``): the linker finds the subjects of
        *fact* questions, and a class label ("city") said in passing must not become one; concept questions
        are answered by the concept desk, which reads the KG by label.
        """
        head = self.memory.log_head()  # before reading: a write after this is caught up by the next sync
        classes = self._classes()
        for namespace, entity in self.graph.named_entities():
            if entity.iri not in classes:
                self.entities.add(entity, namespace=namespace)
        self.entity_seq = max(self.entity_seq, head)

    def sync_entities(self) -> int:
        """Index the entities of facts written since the last sync, by this or any other process.

        Another process on the same home (CLI chat, MCP over stdio, a second server) writes facts through
        the same database; their names reach this process's entity index from the memory's change log.
        One indexed lookup when nothing changed.

        Returns:
            How many entities were (re-)indexed.
        """
        if self.memory.log_head() <= self.entity_seq:
            return 0
        with self._sync_lock:
            head, triples = self.memory.triples_since(self.entity_seq)
            names = dict.fromkeys(n for t in triples for n in (t.subject, t.object))
            classes = self._classes() if names else frozenset()
            added = 0
            for name in names:
                try:
                    named = [(ns, e) for ns, e in self.graph.names_of(name) if e.iri not in classes]
                except InvalidInputError:  # free text, or a literal object: no entity
                    continue
                for namespace, entity in named:  # each namespace's names, for its readers only
                    self.entities.add(entity, namespace=namespace)
                added += bool(named)
            self.entity_seq = max(self.entity_seq, head)
        if added:
            logger.info("entity index caught up to change %d (%d entities)", head, added)
        return added

    def close(self) -> None:
        self.memory.close()
        self.store.close()
        self.db.close()

    def __enter__(self) -> WorkingMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_working_memory(home: Home, embedder: Embedder | None = None) -> WorkingMemory:
    """Open (creating on first use) the working memory under ``home``.

    The database is ``<home>/memory/state.sqlite`` (vector memory, versions and the embedded KG); FAISS index
    files are in ``<home>/memory/index``. With ``[kg] store = "oxigraph"`` the KG lives in an embedded Oxigraph
    database (``<home>/kg/oxigraph``); with ``[kg] query_endpoint`` / ``update_endpoint`` set, at that SPARQL
    endpoint.

    Raises:
        ConfigError: only one of the two endpoints is set, or the schema file is unreadable.
        StoreError: the database cannot be opened.
    """
    from agent.wiring._models import load_embedder
    from kg import (
        EntityLinker,
        KnowledgeGraph,
        OxigraphTripleStore,
        RelationLinker,
        SPARQLEndpointStore,
        SQLiteTripleStore,
        load_schema,
    )
    from memory import Database, IndexConfig, MilvusConfig, VectorMemory

    embedder = embedder or load_embedder(home)
    directory = home.path("memory")
    db = Database.open(directory / DATABASE_FILE)
    settings = home.settings
    mem_cfg = settings.memory
    if mem_cfg.index == "milvus":
        milvus = MilvusConfig(
            uri=mem_cfg.milvus_uri or str(directory / "milvus.db"),
            collection=mem_cfg.milvus_collection,
            token=mem_cfg.milvus_token,
        )
        memory = VectorMemory(db, embedder, milvus=milvus)
    else:
        memory = VectorMemory(
            db, embedder, directory / "index", IndexConfig(kind=mem_cfg.index, flat_max=mem_cfg.flat_max)
        )
    kg_cfg = settings.kg
    if bool(kg_cfg.query_endpoint) != bool(kg_cfg.update_endpoint):
        raise ConfigError("[kg] needs both query_endpoint and update_endpoint, or neither")
    store: TripleStore
    if kg_cfg.query_endpoint:
        if kg_cfg.store != "sqlite":
            raise ConfigError("[kg] store names an embedded store; leave it out when the endpoints are set")
        store = SPARQLEndpointStore(
            kg_cfg.query_endpoint, kg_cfg.update_endpoint, maintain_default_graph=kg_cfg.maintain_default_graph
        )
    elif kg_cfg.store == "oxigraph":
        location = Path(kg_cfg.oxigraph_path) if kg_cfg.oxigraph_path else home.path("kg") / "oxigraph"
        store = OxigraphTripleStore(location)
    else:
        store = SQLiteTripleStore(db)
    schema = load_schema(Path(kg_cfg.schema_file) if kg_cfg.schema_file else None)
    graph = KnowledgeGraph(store, schema)
    entities = EntityLinker(embedder=embedder)
    relations = RelationLinker(
        schema.templates(), embedder, cache_dir=home.path("cache"), exact_templates=schema.zh_templates()
    )
    zh_gate = None
    if settings.memory.zh_subject_gate:
        zh_gate = ZhSubjectGate(schema.zh_templates())
    retriever = HybridRetriever(memory, graph, entities, relations, fusion=settings.memory.fusion, zh_gate=zh_gate)
    wm = WorkingMemory(db, memory, graph, store, entities, relations, retriever)
    wm.refresh_entities()  # the KG's entities, concept classes left out; later writes are caught up by sync
    return wm
