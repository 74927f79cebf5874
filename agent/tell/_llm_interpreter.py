"""An Interpreter that asks a language model (any OpenAI-compatible endpoint) for schema-validated JSON.

The model is shown the schema's relations and asked for one line of JSON::

    {"kind": "edit" | "question" | "chitchat" | "free_text",
     "triples": [{"subject": "...", "relation": "<relation id>", "object": "..."}]}

The reply is validated with pydantic (unknown fields rejected, relation ids checked against the schema, an
``edit`` with no triples or a non-edit with triples refused); anything invalid raises
:class:`~tools.errors.InterpretationError` and nothing is applied. Names are linked to known entities by
exact label or alias, as the template interpreter does.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.tell._interpreter import check_consistent, interpretation_of
from agent.tell._records import Claim, Interpretation
from kg import EntityLinker, Schema, normalize_mention
from memory import Triple
from tools.errors import InterpretationError, InvalidInputError
from tools.lm import LanguageModel

__all__ = ["LLMInterpreter", "LLMReply", "LLMTriple"]

logger = logging.getLogger(__name__)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


class LLMTriple(BaseModel):
    """One triple of the model's reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=1_000)
    relation: str = Field(min_length=1, max_length=200)
    object: str = Field(min_length=1, max_length=1_000)


class LLMReply(BaseModel):
    """The JSON the model must return."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["edit", "question", "chitchat", "free_text"]
    triples: list[LLMTriple] = Field(default_factory=list, max_length=32)


class LLMInterpreter:
    """Text to triples by a language model, its JSON validated against :class:`LLMReply` and the schema.

    Args:
        lm: any :class:`~tools.lm.LanguageModel` (e.g. ``OpenAIChatModel`` over an OpenAI-compatible server).
        schema: the relations the model may use.
        entity_linker: optional; links names to known entities' canonical labels.
        max_new_tokens: the reply budget.
    """

    def __init__(
        self, lm: LanguageModel, schema: Schema, entity_linker: EntityLinker | None = None, max_new_tokens: int = 256
    ) -> None:
        self._lm = lm
        self._schema = schema
        self._linker = entity_linker
        self._max_new_tokens = max_new_tokens

    def prompt(self, text: str) -> str:
        """The instruction sent to the model for ``text``."""
        relations = "; ".join(f"{spec.id} ({spec.label})" for spec in self._schema.relations)
        return (
            "You turn a user's message into knowledge-graph triples. Relations you may use: "
            f"{relations}. Reply with ONE line of JSON and nothing else: "
            '{"kind": "edit" | "question" | "chitchat" | "free_text", '
            '"triples": [{"subject": "...", "relation": "<relation id>", "object": "..."}]}. '
            "Use kind edit only for statements of facts with one of those relations; free_text for other "
            f"statements; question or chitchat otherwise, with no triples. Message: {json.dumps(text)}"
        )

    def interpret(self, text: str) -> Interpretation:
        """The model's reading of ``text``.

        Raises:
            InvalidInputError: ``text`` is empty.
            InterpretationError: the reply is not valid JSON of the expected shape, or names an unknown relation.
            ContradictoryStatementError: two triples give different objects to one functional (subject, relation).
            BackendError: the endpoint failed.
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a message must be a non-empty string")
        raw = self._lm.generate([self.prompt(text)], max_new_tokens=self._max_new_tokens)[0].text
        reply = self.parse(raw)
        claims = tuple(self._claim(t, text) for t in reply.triples)
        check_consistent(self._schema, claims)
        if reply.kind == "edit":
            return interpretation_of(claims, (), (), 0)
        if reply.kind == "free_text":
            return interpretation_of((), (text.strip(),), (), 0)
        if reply.kind == "question":
            return interpretation_of((), (), (text.strip(),), 0)
        return interpretation_of((), (), (), 1)

    def parse(self, raw: str) -> LLMReply:
        """Validate the model's raw reply.

        Raises:
            InterpretationError: see :meth:`interpret`.
        """
        body = _FENCE.sub("", raw.strip())
        try:
            reply = LLMReply.model_validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors())
            raise InterpretationError(
                f"the interpreter model's reply is not valid ({problems}): {raw[:200]!r}"
            ) from exc
        if reply.kind == "edit" and not reply.triples:
            raise InterpretationError("the interpreter model said 'edit' but gave no triples")
        if reply.kind != "edit" and reply.triples:
            raise InterpretationError(f"the interpreter model gave triples for a {reply.kind!r} message")
        for t in reply.triples:
            if t.relation not in self._schema:
                raise InterpretationError(
                    f"the interpreter model used the unknown relation {t.relation!r} "
                    f"(known: {', '.join(self._schema.ids)})"
                )
        return reply

    def _claim(self, t: LLMTriple, text: str) -> Claim:
        subject, s_score = self._exact(t.subject)
        obj, o_score = self._exact(t.object)
        try:
            triple = Triple(subject, self._schema.relation(t.relation).id, obj)
        except InvalidInputError as exc:
            raise InterpretationError(f"the interpreter model gave an invalid triple: {exc}") from exc
        return Claim(triple, text.strip(), None, s_score, s_score == 0.0, o_score == 0.0)

    def _exact(self, name: str) -> tuple[str, float]:
        name = name.strip()
        if self._linker is None:
            return name, 0.0
        key = normalize_mention(name)
        for mention in self._linker.find_mentions(name):
            if mention.surface == key:
                return mention.link.entity.label, mention.link.score
        return name, 0.0
