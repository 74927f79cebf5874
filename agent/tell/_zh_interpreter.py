"""Reading Chinese messages (issue 23): "法国的首都是巴黎。" -> (法国, capital, 巴黎); "...哪里？" asks.

:class:`ZhInterpreter` reads a message that holds CJK characters through the schema's Chinese cloze templates
(``fa:template "{}的首都是"@zh``, :attr:`kg.RelationSpec.zh_templates`) and hands every other message to the
English interpreter it wraps, so one interpreter serves both languages and mixed scripts ("Acme的CEO是Jane
Roe。"). Chinese has no word spaces, so a template is a plain infix: subject before it, object after it, the
longest template first (``{}的总部位于`` before ``{}位于``). A sentence:

1. ending in "？" / "?", or with no statement reading but a question word (谁, 哪, 什么, 吗, ...), is a question;
2. with a negation (不是, 不再, 并非) is kept as free text: nothing positive to record, as in English;
3. read by a template is a claim; names link to known entities by exact label or alias (traditional and
   simplified characters are one name: ``kg.normalize_mention`` folds them), otherwise they are new;
4. otherwise greetings are chit-chat and the rest free text.

Full-width punctuation and width variants are folded (NFKC) before reading; emoji and symbols are dropped
from names; a discourse lead-in ("其实，", "更正：") and "现在 / 如今 / 已经 / 目前" before the verb are skipped.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from agent.tell._interpreter import Interpreter, check_consistent, interpretation_of
from agent.tell._records import Claim, Interpretation
from agent.zh_gate import has_cjk
from kg import EntityLinker, Schema, normalize_mention
from memory import Triple
from tools.errors import InvalidInputError

__all__ = ["ZhInterpreter"]

logger = logging.getLogger(__name__)

_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_LEAD_IN = re.compile(r"^(?:其实|实际上|事实上|更正|纠正一下|请注意|注意|听说|据说|现在)[，,：:\s]*")
_MODAL = "(?:现在|如今|已经|目前|其实)?"
_NEGATION = re.compile(r"不是|不再|并非|并不|没有")
_QUESTION_WORD = re.compile(r"谁|哪|什么|吗|呢|几|多少|怎么|为何|为什么")
_CHITCHAT = re.compile(r"^(?:你好|您好|谢谢|多谢|好的|好吧|再见|嗯|哈+|早上好|晚上好|没关系|不客气)")
_NAME_EDGES = "「」『』“”‘’\"'《》()（）【】[] \t"


@dataclass(frozen=True)
class _Pattern:
    relation: str
    template: str
    regex: re.Pattern[str]


def _compile(relation: str, template: str) -> _Pattern:
    before, _, after = template.partition("{}")
    tail = re.escape(after)
    if after.endswith("是"):  # "{}的首都是" also reads "{}的首都现在是"
        tail = re.escape(after[:-1]) + _MODAL + "是"
    body = rf"^{re.escape(before)}(?P<subject>.+?){tail}(?P<object>.+)$"
    return _Pattern(relation, template, re.compile(body))


def _clean_name(name: str) -> str:
    kept = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "SC")  # emoji, symbols, controls
    return kept.strip(_NAME_EDGES + "，,、。.!！")


class ZhInterpreter:
    """Chinese messages through the schema's ``@zh`` clozes; the rest through ``english`` (see the module).

    Args:
        schema: the relations; their ``zh_templates`` that do not end in "？" are the statement patterns.
        entity_linker: links names to known entities (label or alias, exact).
        english: the interpreter for messages without CJK characters.

    Example:
        >>> zh = ZhInterpreter(load_schema(), EntityLinker(), english)  # doctest: +SKIP
        >>> zh.interpret("法国的首都是巴黎。").claims[0].triple  # doctest: +SKIP
        Triple(subject='法国', relation='capital', object='巴黎')
    """

    def __init__(self, schema: Schema, entity_linker: EntityLinker, english: Interpreter) -> None:
        self._schema = schema
        self._linker = entity_linker
        self._english = english
        patterns = [
            _compile(relation, template)
            for relation, templates in schema.zh_templates().items()
            for template in templates
            if not template.rstrip().endswith(("？", "?"))
        ]
        # Most fixed text first: "{}的总部位于" wins over "{}位于".
        self._patterns = sorted(patterns, key=lambda p: (-len(p.template), p.relation, p.template))

    @property
    def schema(self) -> Schema:
        return self._schema

    def interpret(self, text: str) -> Interpretation:
        """Read ``text``: Chinese by the ``@zh`` templates, anything else by the English interpreter.

        Raises:
            InvalidInputError: ``text`` is not a non-empty string.
            ContradictoryStatementError: two claims give different objects to one functional (subject, relation).
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a message must be a non-empty string")
        if not has_cjk(text):
            return self._english.interpret(text)
        claims: list[Claim] = []
        free: list[str] = []
        questions: list[str] = []
        chitchat = 0
        for raw in _SENTENCE.findall(unicodedata.normalize("NFKC", text)):
            sentence = raw.strip()
            body = _LEAD_IN.sub("", sentence.rstrip("。！？!?；;. ")).strip()
            if not body:
                continue
            if sentence.endswith(("？", "?")):
                questions.append(sentence)
            elif _NEGATION.search(body):
                free.append(sentence)
            elif (claim := self._read(sentence, body)) is not None:
                claims.append(claim)
            elif _QUESTION_WORD.search(body):
                questions.append(sentence)
            elif _CHITCHAT.match(body):
                chitchat += 1
            else:
                free.append(sentence)
        check_consistent(self._schema, claims)
        result = interpretation_of(claims, free, questions, chitchat)
        logger.debug("interpreted %r as %s (%s)", text[:80], result.kind, result.reason)
        return result

    def _read(self, sentence: str, body: str) -> Claim | None:
        for pattern in self._patterns:
            match = pattern.regex.match(body)
            if match is None:
                continue
            subject, obj = _clean_name(match.group("subject")), _clean_name(match.group("object"))
            if not subject or not obj:
                continue
            s_label, s_score = self._exact(subject)
            o_label, o_score = self._exact(obj)
            try:
                triple = Triple(s_label, pattern.relation, o_label)
            except InvalidInputError:
                continue
            return Claim(triple, sentence, pattern.template, s_score, s_score == 0.0, o_score == 0.0)
        return None

    def _exact(self, name: str) -> tuple[str, float]:
        """``(canonical label, score)`` when ``name`` is exactly a known label or alias, else ``(name, 0.0)``."""
        key = normalize_mention(name)
        for mention in self._linker.find_mentions(name):
            if mention.surface == key:
                return mention.link.entity.label, mention.link.score
        return name, 0.0
