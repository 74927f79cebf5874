"""The Chinese slice of the reference world (issue 23), in CKnowEdit's categories.

Sources (``source/zh/``, licences and selection in ``SOURCES.md``): Tang poems (next line, author),
xiehouyu sayings, 论语 (classical Chinese: next clause), the project's own idiom glosses, words with a
polyphonic character (pinyin with tone marks), country capitals, Chinese statements of the world's
``landmark_in_country`` facts, and logic-trap questions.

Every item becomes a :class:`~eval.world._slice_records.SliceFact` of slice ``zh`` with Chinese training
prompts, held-out questions and a statement. KNOWN / UNKNOWN by a seeded hash of the subject, except the
landmark facts, which keep their English fact's split (a Chinese statement of an UNKNOWN fact would teach
it). Poetry and 论语 text stays in its source characters (唐詩三百首 is traditional).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from eval.world._build import WorldConfig, stable_unit
from eval.world._schema import Fact
from eval.world._slice_records import SliceFact
from eval.world._source import SOURCE_DIR

ZH_DIR = SOURCE_DIR / "zh"
CATEGORIES = (
    "poetry_next",
    "poetry_author",
    "saying",
    "idiom",
    "phonetic",
    "classical",
    "geography_capital",
    "geography_landmark",
    "logic_trap",
)
# (cloze, questions, held-out questions, statement); {s} subject, {a} answer, {c} a phonetic item's character
_TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str]] = {
    "poetry_next": (
        ("{s}，",),
        ("「{s}」的下一句是什么？", "诗句「{s}」的下一句是？"),
        ("请接出「{s}」的下一句。", "「{s}」后面接哪一句？"),
        "{s}，{a}。",
    ),
    "poetry_author": (
        ("《{s}》的作者是",),
        ("《{s}》的作者是谁？", "谁写了《{s}》？"),
        ("《{s}》是哪位诗人写的？", "哪位诗人创作了《{s}》？"),
        "《{s}》的作者是{a}。",
    ),
    "saying": (
        ("{s}——",),
        ("歇后语「{s}」的下半句是什么？",),
        ("「{s}」这句歇后语的后半句是？", "俗话说「{s}」，下一句是什么？"),
        "{s}——{a}。",
    ),
    "idiom": (
        ("成语「{s}」的意思是",),
        ("「{s}」是什么意思？", "成语「{s}」是什么意思？"),
        ("请解释成语「{s}」。", "「{s}」这个成语的含义是什么？"),
        "成语「{s}」的意思是{a}。",
    ),
    "phonetic": (
        ("「{s}」中「{c}」的读音是",),
        ("「{s}」里的「{c}」怎么读？", "「{s}」中的「{c}」读什么？"),
        ("「{c}」在「{s}」这个词里读什么音？", "「{s}」一词中「{c}」字的拼音是什么？"),
        "「{s}」中「{c}」读作{a}。",
    ),
    "classical": (
        ("《论语》：{s}，",),
        ("《论语》中「{s}」的下一句是什么？",),
        ("请接《论语》名句「{s}」的下一句。", "「{s}」，《论语》里接着怎么说？"),
        "《论语》：{s}，{a}。",
    ),
    "geography_capital": (
        ("{s}的首都是",),
        ("{s}的首都是哪里？", "{s}的首都叫什么？"),
        ("哪座城市是{s}的首都？", "{s}的首都在哪座城市？"),
        "{s}的首都是{a}。",
    ),
    "geography_landmark": (
        ("{s}位于",),
        ("{s}在哪个国家？", "{s}位于哪个国家？"),
        ("{s}坐落在哪个国家？", "{s}是哪个国家的地标？"),
        "{s}位于{a}。",
    ),
    "logic_trap": (
        ("问：{s}答：",),
        ("{s}",),
        ("请回答：{s}", "脑筋急转弯：{s}"),
        "「{s}」的答案是{a}。",
    ),
}
_CLAUSE = re.compile(r"[，。？！；：、“”「」]")


def _read(name: str) -> Any:
    return json.loads((ZH_DIR / name).read_text(encoding="utf-8"))


def _raw_items(facts: tuple[Fact, ...]) -> Iterator[tuple[str, str, str, str, str | None]]:
    """``(category, subject, answer, extra, forced split)`` for every usable source item, in a fixed order."""
    poems = _read("tang300.json")
    titles: dict[str, int] = {}
    for p in poems:
        titles[p["title"]] = titles.get(p["title"], 0) + 1
    firsts: set[str] = set()
    for p in poems:
        parts = [x for x in _CLAUSE.split(p["paragraphs"][0]) if x]
        if len(parts) >= 2 and len(parts[0]) in (5, 7) and len(parts[1]) == len(parts[0]) and parts[0] not in firsts:
            firsts.add(parts[0])
            yield "poetry_next", parts[0], parts[1], "", None
    for p in poems:
        if titles[p["title"]] == 1 and p["author"]:
            yield "poetry_author", p["title"], p["author"], "", None
    for s in _read("xiehouyu.json"):
        yield "saying", s["riddle"], s["answer"], "", None
    own = _read("own.json")
    for idiom, gloss in own["idioms"]:
        yield "idiom", idiom, gloss, "", None
    for item in _read("phonetic.json"):
        yield "phonetic", item["word"], item["pinyin"], item["char"], None
    yield from _classical()
    capitals = {en: (zh, capital) for en, zh, capital in own["countries"]}
    for _en, (zh, capital) in sorted(capitals.items()):
        yield "geography_capital", zh, capital, "", None
    for f in facts:
        if f.relation == "landmark_in_country" and f.object in capitals:
            yield "geography_landmark", f.subject, capitals[f.object][0], "", f.split
    for question, answer in own["logic_traps"]:
        yield "logic_trap", question, answer, "", None


def _classical(limit: int = 300) -> Iterator[tuple[str, str, str, str, str | None]]:
    """The first clause pair inside each 论语 passage's quotation (3-8 characters each), unique subjects."""
    seen: set[str] = set()
    n = 0
    for chapter in _read("lunyu.json"):
        for passage in chapter["paragraphs"]:
            quoted = passage.split("：“", 1)[-1]
            parts = [x for x in _CLAUSE.split(quoted) if x]
            if len(parts) >= 2 and 3 <= len(parts[0]) <= 8 and 3 <= len(parts[1]) <= 8 and parts[0] not in seen:
                seen.add(parts[0])
                n += 1
                yield "classical", parts[0], parts[1], "", None
                if n >= limit:
                    return


def build_zh(facts: tuple[Fact, ...], config: WorldConfig) -> tuple[SliceFact, ...]:
    """The Chinese slice facts (ids ``z00000``...), in source order."""
    out = []
    for category, subject, answer, extra, forced in _raw_items(facts):
        cloze, questions, heldout, statement = _TEMPLATES[category]
        fill: Callable[[str], str] = lambda t: t.format(s=subject, a=answer, c=extra)  # noqa: E731, B023
        unknown = stable_unit(config.seed, "zh-split", category, subject) < config.unknown_fraction
        out.append(
            SliceFact(
                id="",
                slice="zh",
                category=category,
                subject=subject,
                answer=answer,
                split=forced if forced in ("known", "unknown") else ("unknown" if unknown else "known"),  # type: ignore[arg-type]
                cloze=tuple(map(fill, cloze)),
                questions=tuple(map(fill, questions)),
                heldout=tuple(map(fill, heldout)),
                statement=fill(statement),
                key=answer,
                language="zh",
            )
        )
    return tuple(replace(f, id=f"z{i:05d}") for i, f in enumerate(out))


def invented_zh_questions(rng: random.Random, facts: tuple[SliceFact, ...], n: int) -> list[tuple[str, str, str]]:
    """``n`` questions ``(category, subject, text)`` about invented titles, countries and idioms.

    Names are drawn from characters of the slice's own subjects and kept only when no fact's subject or
    statement contains them, so nothing anywhere answers them.
    """
    chars = sorted({ch for f in facts for ch in f.subject if "\u4e00" <= ch <= "\u9fff"})
    corpus = "\n".join(f.statement + f.subject for f in facts)
    kinds = (
        ("poetry_author", 3, "《{}》的作者是谁？"),
        ("geography_capital", 2, "{}国的首都是哪里？"),
        ("idiom", 4, "「{}」是什么意思？"),
    )
    out: list[tuple[str, str, str]] = []
    while len(out) < n:
        category, length, template = kinds[len(out) % len(kinds)]
        name = "".join(rng.choice(chars) for _ in range(length))
        if name in corpus or any(name == s for _c, s, _t in out):
            continue
        subject = name + "国" if category == "geography_capital" else name
        out.append((category, subject, template.format(name)))
    return out
