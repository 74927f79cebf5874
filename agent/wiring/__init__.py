"""The composition root: every stack is built here from a home and its settings, and nowhere else.

The CLI, the server, the audit (its local engine and every Ray worker), the agent bench and the benches get
their working memory, models and agent from these functions; everything below receives its dependencies
through constructors. One home and its settings therefore give the same stack wherever it runs.

- :mod:`agent.wiring._memory`: :func:`open_working_memory`, which storage backs each seam (SQLite + FAISS,
  Oxigraph, Milvus, a remote SPARQL endpoint), and the :class:`WorkingMemory` over them.
- :mod:`agent.wiring._models`: the embedder, the answering model (the bundled GPT-2 by default,
  :data:`agent.config.BUNDLED_MODEL`, or the served ``[endpoint]`` model), the ``[endpoint]`` chat model
  (:func:`open_endpoint`, the one place an OpenAI endpoint client is built from settings), the request guard,
  the routing thresholds and the thread policy.
- :mod:`agent.wiring._tell`: the tell pipeline (interpreter, controller, editors) ``TellPipeline.open`` builds.
- :mod:`agent.wiring._stacks`: the agent (``Agent.open``: :func:`open_agent`) and the read-only agent the
  audit builds over its own memory and model (:func:`build_agent`), with the concept desk, and the tell
  pipeline alone (:func:`open_tell_stack`, the ``review`` CLI).

It stands in the agent core (``eval`` may import it; it never imports ``eval``), above ``agent.tell`` and the
agent itself, which it imports lazily so that they can in turn call it (``Agent.open``, ``TellPipeline.open``).
"""

from agent.wiring._memory import WorkingMemory, open_working_memory
from agent.wiring._models import (
    apply_thread_policy,
    load_embedder,
    load_language_model,
    load_request_guard,
    open_endpoint,
    policy_thresholds,
)
from agent.wiring._stacks import build_agent, open_agent, open_concept_desk, open_tell_stack
from agent.wiring._tell import editor_factory, llm_interpreter, open_tell_pipeline, template_interpreter

__all__ = [
    "WorkingMemory",
    "apply_thread_policy",
    "build_agent",
    "editor_factory",
    "llm_interpreter",
    "load_embedder",
    "load_language_model",
    "load_request_guard",
    "open_agent",
    "open_concept_desk",
    "open_endpoint",
    "open_tell_pipeline",
    "open_tell_stack",
    "open_working_memory",
    "policy_thresholds",
    "template_interpreter",
]
