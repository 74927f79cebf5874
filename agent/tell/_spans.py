"""Character spans of names in a sentence: the tagger's best run of tokens, widened to whole words and names.

Helpers of the learned reader (:mod:`agent.tell._reader`); nothing here knows about relations or models.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["best_run", "capital_flags", "capital_runs", "fold_with_index", "snap_to_name", "widen"]

_LEAD_WORDS = {"the", "a", "an", "his", "her", "its", "their"}


def capital_flags(text: str, offsets: np.ndarray) -> np.ndarray:
    """Per token ``(T,)``: 1.0 when the word it belongs to starts with a capital or a digit (the encoder is
    uncased, so this is the only trace of case the tagger sees)."""
    flags = np.zeros(len(offsets), dtype=np.float32)
    for k, (a, b) in enumerate(offsets):
        if b > a:
            start = a
            while start > 0 and not text[start - 1].isspace():  # the word this piece belongs to
                start -= 1
            ch = text[start]
            flags[k] = float(ch.isupper() or ch.isdigit())
    return flags


def best_run(margin: np.ndarray) -> tuple[int, int] | None:
    """``(first, last)`` token of the contiguous run with the largest positive sum (Kadane), or ``None``."""
    best, best_run = 0.0, None
    total, start = 0.0, 0
    for i, m in enumerate(margin):
        if total <= 0.0:
            total, start = float(m), i
        else:
            total += float(m)
        if total > best:
            best, best_run = total, (start, i)
    return best_run


def snap_to_name(
    text: str,
    start: int,
    end: int,
    *,
    trim: bool = True,
    blocked: Sequence[tuple[int, int]] = (),
    other: Sequence[tuple[int, int]] = (),
    no_prefix: Sequence[tuple[int, int]] = (),
) -> tuple[int, int] | None:
    """A span that starts a capitalised name, stretched to the whole name: its capitalised neighbours (and
    connectors such as "of" or "&" between them) join it; with ``trim``, leading and trailing lower-case
    words leave it (a tagger that sees context keeps them: "Addanki mandal", "Scion xD").

    Names of unknown entities are where the tagger's boundaries are least sure; English names are runs of
    capitalised words, so the run decides the edges. A lower-case span ("midfielder") is left alone.
    A word overlapping a ``blocked`` character range (the other name) never joins; a word overlapping an
    ``other`` range (a word the tagger gives the other role) does not join across a connector: a
    conjunction splits two names ("Jane Roe and Bob Smith got married."), while "Bacchus and Ariadne"
    stays one name when the tagger gives "Ariadne" no other role. A word overlapping a ``no_prefix`` range
    (one the tagger firmly puts outside every name) does not join from before the span: a title before a
    name ("its CEO Bob Iger") stays out, while a name's own tail ("Charles Beale the Elder") still joins.

    >>> text = "Jane Roe and Bob Smith got married."
    >>> text[slice(*snap_to_name(text, 0, 4))], text[slice(*snap_to_name(text, 0, 4, other=[(13, 16)]))]
    ('Jane Roe and Bob Smith', 'Jane Roe')
    """
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]

    def hits(i: int, ranges: Sequence[tuple[int, int]]) -> bool:
        a, b = words[i]
        return any(a < y and b > x for x, y in ranges)

    def joins(i: int, *, across: bool = False, before: bool = False) -> bool:
        hit = hits(i, blocked) or (across and hits(i, other)) or (before and hits(i, no_prefix))
        return _capitalised(text[slice(*words[i])]) and not hit

    inside = [i for i, (a, b) in enumerate(words) if a < end and b > start]
    capital = [i for i in inside if _capitalised(text[slice(*words[i])])]
    if not capital:
        return start, end
    first, last = (capital[0], inside[-1]) if trim else (inside[0], inside[-1])
    while trim and last > first and not _capitalised(text[slice(*words[last])]):
        last -= 1  # "Sugar Mill near" -> "Sugar Mill"; "company Bianet" -> "Bianet" (above)
    while last + 1 < len(words) and not re.search(r"[,;:!?]$|'s$|’s$|s'$|s’$", text[slice(*words[last])]):
        nxt = text[slice(*words[last + 1])]
        if joins(last + 1):
            last += 1
        elif nxt.casefold() in _CONNECTORS and last + 2 < len(words) and joins(last + 2, across=True):
            last += 2
        else:
            break
    while first > 0:
        prev = text[slice(*words[first - 1])]
        stop = re.search(r"[,;:!?]$", prev) or (prev.endswith(".") and not re.fullmatch(r"(?:[A-Z]\.)+", prev))
        if not joins(first - 1, before=True) or stop or (first - 1 == 0 and prev.casefold() in _OPENERS):
            break
        first -= 1
    return widen(text, words[first][0], words[last][1])


def capital_runs(text: str, blocked: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Character spans of the capitalised names of ``text`` outside ``blocked`` (whole runs of capitalised
    words with their connectors, :func:`snap_to_name`), in order. A sentence-opening function word ("The",
    "Now", "She") alone is no name ("The Hague" is one), and neither is a number alone ("in 2015"); a year
    never joins one ("Since 2019 Jane Roe").

    >>> text = "Jane Roe runs AOL now."
    >>> [text[a:b] for a, b in capital_runs(text, [(14, 17)])]
    ['Jane Roe']
    """
    years = [(m.start(), m.end()) for m in re.finditer(r"(?<!\S)\d{4}(?=[\s,.;:!?]|$)", text)]  # "Since 2019 Jane"
    blocked = [*blocked, *years]
    runs: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", text):
        word = m.group()
        if not _capitalised(word) or any(m.start() < y and m.end() > x for x, y in blocked):
            continue
        if runs and m.start() < runs[-1][1]:
            continue  # inside the run before
        if m.start() == 0 and word.strip(".,;:!?").casefold() in _FUNCTION_OPENERS:
            continue
        span = snap_to_name(text, m.start(), m.end(), trim=True, blocked=blocked)
        if span is not None and re.search(r"[^\W\d_]", text[span[0] : span[1]]):
            runs.append(span)
    return runs


def _capitalised(word: str) -> bool:
    w = word.lstrip("\"'(“")
    return bool(w) and (w[0].isupper() or w[0].isdigit())


_CONNECTORS = {"of", "de", "du", "des", "la", "le", "von", "van", "der", "den", "da", "di", "&", "and", "the", "y"}
# words that open a sentence capitalised without being a name (pronouns, articles, adverbs, prepositions)
_FUNCTION_OPENERS = {
    "the", "a", "an", "now", "today", "these", "this", "that", "those", "since", "in", "on", "at", "as", "after",
    "before", "from", "by", "for", "with", "he", "she", "it", "they", "his", "her", "its", "their", "we", "i",
    "you", "our", "my", "your", "also", "so", "but", "and", "actually", "currently", "nowadays", "there",
}  # fmt: skip
_OPENERS = {"now", "today", "actually", "also", "so", "but", "and", "these", "since", "update", "note", "breaking"}


def widen(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span widened to whole words, without a possessive "'s", edge punctuation, a leading article, a
    leading lower-case type noun before a capitalised name ("work Body of Air") or a trailing reflexive
    ("Raphael himself")."""
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    piece = text[start:end]
    for suffix in ("'s", "’s"):
        if piece.endswith(suffix):
            end -= len(suffix)
    while end > start and text[end - 1] in ".,;:!?\"')”":
        if text[end - 1] == "." and re.search(r"(?:\b[A-Z]|\b(?:Inc|Jr|Sr|Ltd|Co|Corp|St|Dr))\.$", text[start:end]):
            break
        end -= 1
    while start < end and text[start] in "\"'(“":
        start += 1
    first = text[start:end].split(" ", 1)
    if len(first) == 2 and first[0].casefold() in _LEAD_WORDS and not _article_of_a_name(first[0], first[1]):
        start += len(first[0]) + 1
        first = text[start:end].split(" ", 1)
    if len(first) == 2 and first[0] in _TYPE_NOUNS and _capitalised(first[1]):  # "the work Body of Air"
        start += len(first[0]) + 1
    last = text[start:end].rsplit(" ", 1)
    if len(last) == 2 and last[1].casefold() in _REFLEXIVES:  # "by the artist Raphael himself"
        end -= len(last[1]) + 1
    return (start, end) if end > start else None


# Lower-case nouns naming what a thing is, said before its name ("the work X", "the company X", "the star X"):
# never the first word of a name that goes on capitalised
_TYPE_NOUNS = {
    "work", "painting", "artwork", "piece", "sculpture", "statue", "novel", "book", "song", "album", "film",
    "opera", "poem", "company", "firm", "star", "constellation", "landmark", "artist", "painter", "sculptor",
    "author", "writer", "composer", "architect", "country", "city", "language", "university", "player",
}  # fmt: skip
_REFLEXIVES = {"himself", "herself", "itself", "themselves"}


def _article_of_a_name(article: str, rest: str) -> bool:
    """A capitalised "The" before a capitalised word belongs to the name ("The Phantom", "The Ghost")."""
    return article == "The" and _capitalised(rest)


def fold_with_index(text: str) -> tuple[str, list[int]]:
    """``text`` lower-cased without accents, and for each folded character its index in ``text``."""
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for base in unicodedata.normalize("NFKD", ch):
            if unicodedata.combining(base):
                continue
            for low in base.lower():
                chars.append(low)
                index.append(i)
    return "".join(chars), index
