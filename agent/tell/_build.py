"""Building the pipeline's parts from settings: the parametric editors and the LLM interpreter."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Settings, TellSettings
from agent.tell._interpreter import Interpreter, TemplateInterpreter
from agent.tell._patterns import render_statement
from agent.tell._phrasings import load_statement_phrasings
from agent.wiring import WorkingMemory
from tools.errors import ConfigError

if TYPE_CHECKING:
    from tools.edit import Editor

__all__ = ["editor_factory", "llm_interpreter", "template_interpreter"]


def editor_factory(
    wm: WorkingMemory, corpus: Sequence[str] | None, cache_dir: str | Path | None
) -> Callable[[str], Editor]:
    """Method name -> editor, with key statistics over ``corpus`` (default: the KG's facts as sentences).

    The corpus is read when the first editor is made; statistics are cached in ``cache_dir`` under a hash
    of the texts.
    """

    def make(method: str) -> Editor:
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
    from agent.tell._llm_interpreter import LLMInterpreter
    from tools.lm import OpenAIChatModel

    if not isinstance(settings, Settings) or not settings.endpoint.base_url or not settings.endpoint.model:
        raise ConfigError("[tell] interpreter = 'llm' needs [endpoint] base_url and model")
    ep = settings.endpoint
    remote = OpenAIChatModel(
        ep.base_url, ep.model, api_key=os.environ.get(ep.api_key_env) or None, timeout=ep.timeout,
        max_retries=ep.max_retries,
    )  # fmt: skip
    return LLMInterpreter(remote, wm.graph.schema, wm.entities)


def template_interpreter(settings: Settings | TellSettings, wm: WorkingMemory) -> TemplateInterpreter:
    """The schema's phrasings and, with ``[tell] interpreter = "reader"`` (the default), the learned reader.

    Raises:
        ConfigError: the schema file or the reader artifact cannot be read.
    """
    from agent.tell._reader import TokenEncoder, TripleReader
    from agent.tell._reader_model import ReaderModel

    cfg = settings.tell if isinstance(settings, Settings) else settings
    schema_file = settings.kg.schema_file if isinstance(settings, Settings) else ""
    phrasings = load_statement_phrasings(schema_file or None)
    reader = None
    if cfg.interpreter == "reader":
        reader = TripleReader(ReaderModel.load(cfg.reader_path or None), TokenEncoder(), wm.entities, wm.graph)
    return TemplateInterpreter(wm.graph.schema, wm.entities, wm.graph, phrasings, reader=reader)
