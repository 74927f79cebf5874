"""The tell pipeline a home's settings describe: interpreter, controller, editors (:func:`open_tell_pipeline`).

Part of the composition root (:mod:`agent.wiring`); ``TellPipeline.open`` calls it. The ``[endpoint]`` model
of the LLM interpreter comes from :func:`agent.wiring.open_endpoint`, like every other endpoint model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Settings, TellSettings
from agent.wiring._memory import WorkingMemory
from tools.errors import ConfigError

if TYPE_CHECKING:
    from agent.tell import Interpreter, ModelBelief, TellPipeline, TemplateInterpreter
    from tools.edit import Editor
    from tools.lm import LocalLanguageModel

__all__ = ["editor_factory", "llm_interpreter", "open_tell_pipeline", "template_interpreter"]


def open_tell_pipeline(
    wm: WorkingMemory,
    settings: Settings | TellSettings,
    lm: LocalLanguageModel | None = None,
    *,
    interpreter: Interpreter | None = None,
    corpus: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    model_belief: ModelBelief | None = None,
) -> TellPipeline:
    """Build the pipeline the settings describe (``TellPipeline.open``).

    Args:
        wm: the working memory.
        settings: the whole config (its ``[tell]`` and ``[endpoint]`` sections) or just ``[tell]``.
        lm: the local model, needed for ``parametric = "immediate"`` or ``"consolidate"``.
        interpreter: overrides the configured one.
        corpus: sentences for the editors' key statistics (default: the KG's facts as sentences).
        cache_dir: where editors cache those statistics.
        model_belief: see :class:`agent.tell.Controller`.

    Raises:
        ConfigError: ``interpreter = "llm"`` without an endpoint, or a parametric mode without ``lm``.
    """
    from agent.tell import (
        Controller,
        EditLog,
        ParametricEditor,
        RateLimiter,
        TellEditor,
        TellPipeline,
        TrustPolicy,
        ZhInterpreter,
    )

    cfg = settings.tell if isinstance(settings, Settings) else settings
    schema = wm.graph.schema
    if interpreter is None and cfg.interpreter == "llm":
        interpreter = llm_interpreter(settings, wm)
    elif interpreter is None:  # Chinese messages by the schema's @zh clozes, the rest by the English one
        interpreter = ZhInterpreter(schema, wm.entities, template_interpreter(settings, wm))
    trust = TrustPolicy.from_settings(cfg.roles, cfg.default_role, cfg.untrusted_policy)
    controller = Controller(
        wm.graph, trust, RateLimiter(cfg.edits_per_minute, cfg.rate_limit_exempt), model_belief=model_belief
    )
    parametric = None
    if cfg.parametric != "off":
        factory = editor_factory(wm, corpus, cache_dir)
        parametric = ParametricEditor(
            cfg.parametric,
            schema,
            lm,
            factory,
            method=cfg.parametric_method,
            consolidate_method=cfg.consolidate_method,
        )
    editor = TellEditor(wm, EditLog(wm.db), parametric)
    return TellPipeline(
        wm,
        interpreter,
        controller,
        editor,
        max_chars=cfg.max_message_chars,
        consolidate_batch=cfg.consolidate_batch,
    )


def editor_factory(
    wm: WorkingMemory, corpus: Sequence[str] | None, cache_dir: str | Path | None
) -> Callable[[str], Editor]:
    """Method name -> editor, with key statistics over ``corpus`` (default: the KG's facts as sentences).

    The corpus is read when the first editor is made; statistics are cached in ``cache_dir`` under a hash
    of the texts.
    """

    def make(method: str) -> Editor:
        from agent.tell._patterns import render_statement
        from tools.edit import get_editor

        if corpus is not None:
            texts = list(corpus)
        else:
            schema = wm.graph.schema
            texts = [
                render_statement(schema, a.triple.subject, a.triple.relation, a.triple.object) for a in wm.graph.facts()
            ]
        return get_editor(method, corpus=texts, cache_dir=cache_dir)

    return make


def llm_interpreter(settings: Settings | TellSettings, wm: WorkingMemory) -> Interpreter:
    """An :class:`LLMInterpreter` over the ``[endpoint]`` model.

    Raises:
        ConfigError: no endpoint base URL or model is configured.
    """
    from agent.tell import LLMInterpreter
    from agent.wiring._models import open_endpoint

    if not isinstance(settings, Settings) or not settings.endpoint.base_url or not settings.endpoint.model:
        raise ConfigError("[tell] interpreter = 'llm' needs [endpoint] base_url and model")
    return LLMInterpreter(open_endpoint(settings), wm.graph.schema, wm.entities)


def template_interpreter(settings: Settings | TellSettings, wm: WorkingMemory) -> TemplateInterpreter:
    """The schema's phrasings and, with ``[tell] interpreter = "reader"`` (the default), the learned reader.

    Raises:
        ConfigError: the schema file or the reader artifact cannot be read.
    """
    from agent.tell import ReaderModel, TemplateInterpreter, TokenEncoder, TripleReader, load_statement_phrasings

    cfg = settings.tell if isinstance(settings, Settings) else settings
    schema_file = settings.kg.schema_file if isinstance(settings, Settings) else ""
    phrasings = load_statement_phrasings(schema_file or None)
    reader = None
    if cfg.interpreter == "reader":
        reader = TripleReader(
            ReaderModel.load(cfg.reader_path or None), TokenEncoder(), wm.entities, wm.graph, schema=wm.graph.schema
        )
    return TemplateInterpreter(wm.graph.schema, wm.entities, wm.graph, phrasings, reader=reader)
