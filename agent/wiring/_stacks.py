"""The agent stacks: the full one a home describes (:func:`open_agent`) and a read-only one over given parts.

Part of the composition root (:mod:`agent.wiring`). ``Agent.open`` (CLI, agent bench), the server's agent and
the audit's agent setup (local engine and Ray workers) are all built here, so one home and its settings give
the same thresholds, model, guard and concept desk wherever the agent runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from agent.config import Home, Settings
from agent.wiring._memory import WorkingMemory, open_working_memory
from agent.wiring._models import load_embedder, load_language_model, load_request_guard, policy_thresholds
from tools.errors import InvalidInputError

if TYPE_CHECKING:
    from agent._agent import Agent
    from agent._concepts import ConceptDesk
    from agent.tell import TellPipeline
    from tools.lm import LanguageModel

__all__ = ["build_agent", "open_agent", "open_concept_desk", "open_tell_stack"]

logger = logging.getLogger(__name__)


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


def open_agent(home: Home, lm: LanguageModel | None = None, *, with_tell: bool = True) -> Agent:
    """The default stack under ``home``: its working memory, model, calibrated thresholds, tell pipeline,
    request guard and concept desk (what ``Agent.open`` returns).

    Args:
        home: the home (state and settings).
        lm: the answering model (default: :func:`load_language_model`).
        with_tell: build the tell pipeline (``False``: a read-only agent). Parametric edits need a local model.

    Raises:
        ConfigError, ModelLoadError, StoreError: the settings, model or working memory cannot be used.
    """
    from agent._agent import Agent
    from agent.wiring._tell import open_tell_pipeline
    from memory import MemoEmbedder
    from tools.lm import is_local_model

    embedder = load_embedder(home)
    wm = open_working_memory(home, embedder)
    model = lm or load_language_model(home)
    tell = None
    if with_tell:
        local = model if is_local_model(model) else None  # parametric edits need weights
        tell = open_tell_pipeline(wm, home.settings, lm=local)
    guard = load_request_guard(embedder)
    memo = embedder if isinstance(embedder, MemoEmbedder) else None
    concepts = open_concept_desk(wm, home.settings)
    return Agent(
        wm,
        model,
        thresholds=policy_thresholds(home),
        tell=tell,
        guard=guard,
        concepts=concepts,
        embedder=memo,
        paraphrases=home.settings.model_policy().paraphrases,
    )


@contextmanager
def open_tell_stack(home: Home) -> Iterator[TellPipeline]:
    """The tell pipeline under ``home`` without an agent around it (the ``review`` CLI): its working memory,
    and the local model only where ``[tell] parametric`` is on (an accepted edit may change the weights).
    The working memory is closed when the block ends.

    Raises:
        ConfigError, ModelLoadError, StoreError: the settings, model or working memory cannot be used.
    """
    from agent.wiring._tell import open_tell_pipeline
    from tools.lm import is_local_model

    wm = open_working_memory(home)
    try:
        local = None
        if home.settings.tell.parametric != "off":
            model = load_language_model(home)
            local = model if is_local_model(model) else None
        yield open_tell_pipeline(wm, home.settings, lm=local)
    finally:
        wm.close()


def build_agent(home: Home, wm: WorkingMemory, lm: LanguageModel) -> Agent:
    """A read-only agent over a given working memory and model with the home's thresholds, and no tell
    pipeline, request guard or concept desk: the audit's ``agent`` setup, as the audit has always built it."""
    from agent._agent import Agent

    return Agent(wm, lm, thresholds=policy_thresholds(home), paraphrases=home.settings.model_policy().paraphrases)
