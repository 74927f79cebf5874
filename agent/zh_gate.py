"""Which memory passages can answer a Chinese question: those that name what it asks about (issue 23).

Neither retrieval channel can tell on its own whether a passage is about a Chinese question's subject. MiniLM
reads no Chinese, so its nearest passages are noise; BM25 over jieba words always finds *some* passage sharing
characters with the question (``《留別王維》的作者是孟浩然。`` for ``《黃鶴樓送孟浩然之廣陵》的作者是谁？``), and
reciprocal rank fusion normalises the best fused hit to 1.0, so the policy's ``memory`` threshold cannot
tell a passage about the subject from one that shares a character with it. A reader model then copies an
answer out of the wrong passage. Measured on ``world-zh:test`` (45 questions, ``llama-world-zh``): RAG answered
none of the 26 KNOWN questions right that the model alone answered 13 of.

The gate: a passage is evidence for a Chinese question only if it contains the question's *subject spans*,
compared folded (:func:`kg.normalize_mention`: case, width, punctuation, traditional -> simplified, one
word per CJK character). The spans are, first that applies:

1. every quoted span (``「...」``, ``《...》``, ``『...』``, ``“...”``), all of them: ``《论语》中「狂而不直」``
   needs both;
2. every run of Latin-script words (``Al Daayen坐落在哪个国家？`` -> ``Al Daayen``);
3. the subject of the schema's ``@zh`` question template the question matches (``希腊的首都是哪里？`` -> ``希腊``),
   and then the passage must also state that relation of it: contain one of the relation's statement clozes with
   the subject filled in (``希腊的首都是``; ``Coolock位于希腊。`` names Greece but not its capital);
4. the words before the first ``的``, a leading question (``哪座城市是``) cut off (``法國的首都在哪座城市？`` ->
   ``法國``, a phrasing no template has);
5. the longest piece between question words of the question's longest clause (``脑筋急转弯：一个数加上它自己等于
   二十，这个数是多少？`` -> ``一个数加上它自己等于二十``; ``谁的首都是巴黎？`` -> ``的首都是巴黎``).

Questions without CJK characters are not gated (MiniLM's cosine scores English relevance).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kg import normalize_mention

__all__ = ["SubjectKey", "ZhSubjectGate", "has_cjk"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_QUOTED = re.compile(r"「([^」]+)」|《([^》]+)》|『([^』]+)』|“([^”]+)”")
_LATIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.&\-]*(?: [A-Za-z0-9][A-Za-z0-9'’.&\-]*)*")
_CLAUSE = re.compile(r"[，,。.！!？?；;：:、\s]+")
_QUESTION_WORD = re.compile(r"哪|谁|什么|多少|几|怎么|如何|为何")
_ASKED_HEAD = re.compile(rf"^.*(?:{_QUESTION_WORD.pattern})[^是为]*[是为]")  # "哪座城市是" before the subject


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph."""
    return bool(_CJK.search(text))


def _template_regex(template: str) -> re.Pattern[str]:
    before, _, after = template.partition("{}")
    return re.compile(rf"^{re.escape(before)}(?P<subject>.+?){re.escape(after)}$")


@dataclass(frozen=True)
class SubjectKey:
    """What a passage must contain to answer a Chinese question: every span, and one of the ``statements``
    when the question matched a relation's template (its statement clozes with the subject filled in)."""

    spans: tuple[str, ...]
    statements: tuple[str, ...] = ()

    def admits(self, text: str) -> bool:
        """Whether ``text`` (folded) contains every span and, if any are given, one of the statements."""
        folded = f" {normalize_mention(text)} "

        def has(part: str) -> bool:
            return f" {normalize_mention(part)} " in folded

        return all(map(has, self.spans)) and (not self.statements or any(map(has, self.statements)))


class ZhSubjectGate:
    """Keeps the memory passages that contain a Chinese question's subject spans (see the module docstring).

    Args:
        templates: the schema's ``@zh`` phrasings per relation (``Schema.zh_templates()``): those ending in
            "？" are questions, the others statement clozes (``"{}的首都是"``).

    Example:
        >>> gate = ZhSubjectGate({"capital": ("{}的首都是哪里？", "{}的首都是")})
        >>> key = gate.key("希腊的首都是哪里？")
        >>> key
        SubjectKey(spans=('希腊',), statements=('希腊的首都是',))
        >>> key.admits("希腊的首都是雅典。"), key.admits("苏丹的首都是喀土穆。"), key.admits("Coolock位于希腊。")
        (True, False, False)
    """

    def __init__(self, templates: Mapping[str, Sequence[str]] | None = None) -> None:
        questions: list[tuple[str, str]] = []
        self._statements: dict[str, tuple[str, ...]] = {}
        for relation, phrasings in (templates or {}).items():
            asked = [t.strip() for t in phrasings if t.strip().endswith(("？", "?"))]
            questions += [(t, relation) for t in asked]
            self._statements[relation] = tuple(t.strip() for t in phrasings if t.strip() not in asked)
        questions.sort(key=lambda q: -len(q[0]))  # most fixed text first
        self._questions = [(_template_regex(t), relation) for t, relation in questions]

    def key(self, question: str) -> SubjectKey | None:
        """What a passage must contain to answer ``question``; ``None`` when it has no CJK character (no gate)."""
        if not has_cjk(question):
            return None
        quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(question)]
        if spans := _kept(quoted, shortest=1):  # 《蟬》 is a title
            return SubjectKey(spans)
        if spans := _kept(m.group() for m in _LATIN.finditer(question)):
            return SubjectKey(spans)
        body = question.strip()
        for regex, relation in self._questions:
            match = regex.match(body)
            if match and (spans := _kept(_CLAUSE.split(match.group("subject"))[-1:])):
                statements = tuple(t.replace("{}", spans[0]) for t in self._statements.get(relation, ()))
                return SubjectKey(spans, statements)
        head, of, _ = body.partition("的")
        head = _ASKED_HEAD.sub("", _CLAUSE.split(head)[-1]) if of else ""
        if not _QUESTION_WORD.search(head) and (spans := _kept([head])):
            return SubjectKey(spans)
        clause = max(_CLAUSE.split(body), key=len)
        return SubjectKey(_kept([max(_QUESTION_WORD.split(clause), key=len)]))


def _kept(spans: Iterable[str], shortest: int = 2) -> tuple[str, ...]:
    """The spans of at least ``shortest`` characters once folded (unquoted, a lone letter or digit is no name)."""
    return tuple(s.strip() for s in spans if len(normalize_mention(s).replace(" ", "")) >= shortest)
