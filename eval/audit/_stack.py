"""Building what an audit runs from a plain, picklable recipe (:class:`AuditConfig`).

The one process of the local engine and every Ray worker build their setups, grader and claim checker the
same way from the same config, so both engines give the same answers. The world's working memory is
prepared once, by the driver, before any worker starts (:func:`prepare_world_memory`). The working memory,
models, endpoint clients and agent come from the composition root (:mod:`agent.wiring`); this module only
puts the audit's setups, grader and claim checker together from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from eval.audit._claims import ClaimChecker
from eval.audit._embed_cache import CachingEmbedder
from eval.audit._errors import SetupUnavailableError
from eval.audit._graders import EmbeddingGrader, ExactGrader, Grader, LLMJudgeGrader
from eval.audit._setups import AgentSetup, EndpointSetup, RagSetup, Setup, StandaloneSetup, parse_endpoint_spec

if TYPE_CHECKING:
    from agent.config import Home
    from agent.wiring import WorkingMemory
    from tools.lm import LanguageModel, OpenAIChatModel

__all__ = ["BUILTIN_SETUPS", "AuditConfig", "Stack", "build_stack", "check_setups", "prepare_world_memory"]

logger = logging.getLogger(__name__)
BUILTIN_SETUPS = ("standalone", "rag", "agent")
GraderName = Literal["exact", "embedding", "llm"]
EDITS_SCOPE_ID = "world-edits"  # the namespace (memory and KG) the world's EDITS are written to
EDITS_WHO = "world"  # who loads them: the trusted source of the default trust policy (bulk loads are trusted)
WORLD_READERS = (EDITS_SCOPE_ID, "world")  # what a world dataset's setups read, in order of precedence


def is_world_dataset(spec: str) -> bool:
    """Whether ``spec`` names the world's questions (``world:`` or its Chinese slice's, ``world-zh:``)."""
    return spec.startswith(("world:", "world-zh:"))


@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit's answers depend on (the output directory's ``run.json`` keeps it for resuming).

    Attributes:
        dataset: a dataset spec (``world:test``, a file, ``edits:PATH``; see :mod:`eval.audit._datasets`).
        setups: ``standalone``, ``rag``, ``agent`` or ``openai:<base url>#<model>`` names, in report order.
        grader: ``exact`` (default), ``embedding`` or ``llm`` (needs ``judge`` or the home's ``[endpoint]``).
        home: the factagent home (working memory, settings); ``None``: ``$FACTAGENT_HOME`` or ``~/.factagent``.
        model: the local model directory; ``None``: the home's ``[model] path``, else the bundled GPT-2.
        k: evidence pieces in a RAG prompt.
        batch_size: questions per generation batch (and per Ray task).
        limit: audit an evenly spaced sample of this many questions.
        judge: ``openai:<base url>#<model>`` of the LLM judge.
        embedding_threshold: cosine similarity from which the embedding grader accepts an answer.
        on_bad_row: ``fail`` or ``skip`` malformed dataset rows.
        resamples, seed: the bootstrap.
        torch_threads: torch CPU threads in every process (the same in all engines keeps results identical).
        prepare_memory: for world datasets, first load the world's UNKNOWN documents and EDITS into the
            working memory (skipping what is there); ``False`` uses the memory as it is.
    """

    dataset: str = "world:test"
    setups: tuple[str, ...] = ("standalone", "rag")
    grader: GraderName = "exact"
    home: str | None = None
    model: str | None = None
    k: int = 3
    batch_size: int = 32
    limit: int | None = None
    judge: str | None = None
    embedding_threshold: float = 0.85
    on_bad_row: Literal["fail", "skip"] = "fail"
    resamples: int = 1000
    seed: int = 0
    torch_threads: int | None = None
    prepare_memory: bool = True

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        keys = ("dataset", "grader", "model", "k", "limit", "judge", "embedding_threshold", "on_bad_row")
        return {key: getattr(self, key) for key in keys}

    def needs_memory(self) -> bool:
        """Whether the working memory is opened (RAG, the agent, claim checks on world questions)."""
        return "rag" in self.setups or "agent" in self.setups or is_world_dataset(self.dataset)


@dataclass
class Stack:
    """Built setups (by name), the grader and the claim checker; :meth:`close` releases them."""

    setups: dict[str, Setup]
    grader: Grader
    claims: ClaimChecker | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close the working memory and endpoint clients."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_lm(config: AuditConfig, home: Home) -> LanguageModel:
    """The model the built-in setups share: ``config.model``, else the home's (local, or served with
    ``[model] backend = "openai"``: then standalone, RAG and the agent all ask the same served model).

    Built by the composition root; the audit's threads are its own (``config.torch_threads``)."""
    from agent.wiring import load_language_model

    return load_language_model(home, config.model or None, threads=False)


def _endpoint(spec: str, home: Home) -> OpenAIChatModel:
    """The ``openai:<base url>#<model>`` endpoint, with the home's ``[endpoint]`` key, timeout and retries."""
    from agent.wiring import open_endpoint

    url, model = parse_endpoint_spec(spec)
    return open_endpoint(home.settings, url, model)


def _check_agent() -> None:
    """A clear error where ``agent.Agent`` cannot be imported (a broken install), before any work."""
    try:
        from agent import Agent  # noqa: F401
    except ImportError as exc:
        raise SetupUnavailableError("the agent is not available yet (agent.Agent cannot be imported)") from exc


def _agent_setup(config: AuditConfig, home: Home, lm: LanguageModel, wm: WorkingMemory) -> Setup:
    """The agent over the audit's model and working memory, read-only, with the home's policy thresholds.

    On world datasets it reads the namespace the EDITS were written to (and, like every question, the shared
    ``world`` namespace of the documents).
    """
    from agent.wiring import build_agent

    _check_agent()
    agent = build_agent(home, wm, lm)
    namespace = EDITS_SCOPE_ID if is_world_dataset(config.dataset) else "default"
    return AgentSetup(agent, namespace=namespace)


def check_setups(config: AuditConfig) -> None:
    """Fail before any work when a setup cannot be built (unknown name, bad endpoint spec, no agent yet).

    Raises:
        SetupUnavailableError: the first problem found.
    """
    if not config.setups:
        raise SetupUnavailableError("no setups given (standalone, rag, agent or openai:<url>#<model>)")
    if len(set(config.setups)) != len(config.setups):
        raise SetupUnavailableError(f"a setup is named twice in {','.join(config.setups)}")
    for name in config.setups:
        if name.startswith("openai:"):
            parse_endpoint_spec(name)
        elif name not in BUILTIN_SETUPS:
            raise SetupUnavailableError(f"unknown setup {name!r} (standalone, rag, agent or openai:<url>#<model>)")
    if "agent" in config.setups:
        _check_agent()
    if config.judge:
        parse_endpoint_spec(config.judge)


def _grader(
    config: AuditConfig, home: Home, embedder: CachingEmbedder | None, closers: list[Callable[[], None]]
) -> Grader:
    if config.grader == "exact":
        return ExactGrader()
    if config.grader == "embedding":
        from agent.wiring import load_embedder

        return EmbeddingGrader(embedder or load_embedder(home), config.embedding_threshold)
    if config.grader == "llm":
        cfg = home.settings.endpoint
        spec = config.judge or (f"openai:{cfg.base_url}#{cfg.model}" if cfg.base_url and cfg.model else None)
        if spec is None:
            raise SetupUnavailableError(
                "the llm grader needs --judge openai:<base url>#<model> or [endpoint] in config"
            )
        judge = _endpoint(spec, home)
        closers.append(judge.close)
        return LLMJudgeGrader(judge, endpoint=spec.removeprefix("openai:"))
    raise SetupUnavailableError(f"unknown grader {config.grader!r} (exact, embedding or llm)")


def build_stack(config: AuditConfig) -> Stack:
    """Build the setups, grader and claim checker ``config`` names (the working memory must be prepared).

    Raises:
        SetupUnavailableError: an unknown setup or grader, the agent before it exists, a bad endpoint spec.
        ModelLoadError, ConfigError, StoreError: the model, home or working memory cannot be opened.
    """
    from agent.config import open_home

    check_setups(config)
    if config.torch_threads:
        import torch

        torch.set_num_threads(config.torch_threads)
    home = open_home(config.home)
    closers: list[Callable[[], None]] = []
    wm = None
    embedder = None
    if config.needs_memory():
        from agent.wiring import load_embedder, open_working_memory

        embedder = CachingEmbedder(load_embedder(home))
        wm = open_working_memory(home, embedder)
        closers.append(wm.close)
    try:
        lm = _load_lm(config, home) if set(config.setups) & set(BUILTIN_SETUPS) else None
        setups: dict[str, Setup] = {}
        for name in config.setups:
            if name == "standalone" and lm is not None:
                setups[name] = StandaloneSetup(lm)
            elif name == "rag" and lm is not None and wm is not None:
                setups[name] = RagSetup(
                    lm,
                    wm.retriever,
                    k=config.k,
                    prefetch=embedder.embed if embedder else None,
                    namespaces=_readers(config),
                )
            elif name == "agent" and lm is not None and wm is not None:
                setups[name] = _agent_setup(config, home, lm, wm)
            else:
                model = _endpoint(name, home)
                closers.append(model.close)
                setups[name] = EndpointSetup(model, name=name)
        grader = _grader(config, home, embedder, closers)
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    claims = ClaimChecker(wm.retriever, namespaces=_readers(config)) if wm is not None else None
    return Stack(setups, grader, claims, closers)


def _readers(config: AuditConfig) -> tuple[str, ...] | None:
    """The KG namespaces a world dataset's setups read (the edits shadow the world's facts); else all."""
    return WORLD_READERS if is_world_dataset(config.dataset) else None


def prepare_world_memory(wm: WorkingMemory, world: Any, *, batch_size: int = 256) -> tuple[int, int]:
    """Put the audit's memory in place: the UNKNOWN facts' documents and triples, and what was told (EDITS).

    ARCHITECTURE.md's benchmark setting: the memory holds the UNKNOWN facts and the EDITS, never the KNOWN
    facts. Both go through the tell pipeline's bulk door (:meth:`agent.tell.TellPipeline.load`), so each is
    one logged edit that can be rolled back, by the trusted source ``world``: the documents in the shared
    ``world`` namespace, the edits in the ``world-edits`` namespace (memory item and KG assertion), each
    written as its relation's first statement with the new object. A reader of :data:`WORLD_READERS` sees
    an edit's fact in place of the world's. Both steps skip what is already there, so calling this again is
    cheap.

    Returns:
        documents and edits written now.
    """
    from agent.config import TellSettings
    from agent.tell import BulkFact, TellPipeline
    from eval.world._load_memory import load_world_into
    from eval.world._zh_names import name_world_entities_zh
    from memory import Scope, Triple

    # the world through the tell pipeline's bulk door (one logged edit, trusted source "world")
    pipeline = TellPipeline.open(wm, TellSettings(interpreter="templates"))
    report = load_world_into(world, wm.db, wm.memory, wm.graph, pipeline=pipeline)
    scope = Scope(agent_id=EDITS_SCOPE_ID)
    done = wm.memory.count(scope=scope) if scope in wm.memory.scopes() else 0
    todo = list(world.edits)[done:]
    relations = {r.id: r for r in world.relations}
    edit_id: str | None = None
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        facts = [
            BulkFact(
                text=relations[e.relation].statements[0].format(e.subject, e.new_object),
                triple=Triple(e.subject, e.relation, e.new_object),
                source=f"world-edit:{e.id}",
                metadata={"edit_id": e.id, "fact_id": e.fact_id},
                kg_source=e.id,
            )
            for e in batch
        ]
        loaded = pipeline.load(
            facts, who=EDITS_WHO, namespace=EDITS_SCOPE_ID, edit_id=edit_id, text=f"world edits ({len(todo)})"
        )
        edit_id = loaded.edit_id
    if todo:
        wm.memory.flush()
    # the countries the EDITS name get their Chinese names there too (a new object may be one no world fact names)
    zh_names = report.zh_names + name_world_entities_zh(wm.graph, namespaces=(EDITS_SCOPE_ID,))
    if report.documents or todo or zh_names:  # the new names (Chinese ones too) into the entity index
        wm.refresh_entities()
    logger.info("world memory: %d documents and %d edits written now", report.documents, len(todo))
    return report.documents, len(todo)
