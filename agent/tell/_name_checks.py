"""Whether a name span the reader read can be the whole name of its role: checks on the sentence's words.

Helpers of the learned reader (:mod:`agent.tell._reader`); they know English clause shape, not relations or
models. The tagger's boundaries are least sure on names with lower-case words ("wife of Zhou Rui", "The shot
at the corpse of the king"), and a name read short is a wrong triple applied, so:

* :func:`governing_phrase` — a name that is the complement of a clause-opening "<noun> of" phrase ("wife of
  Zhou Rui has married Cassiopeia.") is the clause's subject only when a copula follows ("the mother of Jane
  Roe is Ann Smith."): with any other verb the subject is the whole phrase, so the name alone is not a role.
* :func:`title_start` — a span that starts with a lower-case preposition or conjunction ("at the corpse of
  the king") is a name cut on the left: no name starts with one. When it is the first name and only a
  sentence-opening "The / A / An" plus lower-case words stand before it, those words are the title's head
  ("The shot at the corpse of the king").
* :func:`foreign_head` — a first span starting with a lower-case word after a sentence-opening run of a
  capitalised word and lower-case words that are no English function words ("Mei di guo | zhu yi cong Yue
  Nan ...") is a name read from its middle.
* :func:`overlaps_known` — an unknown span that overlaps a name the entity linker knows and reaches past it
  on one side while the known name reaches past it on the other cannot be made to match a known name.
* :func:`quantity_lead` — a span starting "One of" / "Some of" before a capitalised word holds a quantifier
  ("One of Master of the Spes Nostra's famous works is ...").
* :func:`comma_tail` — a span followed by a comma and only capitalised words to the sentence end
  ("Elizabeth Cheney, Lady Say.") may or may not end at the comma.
* :func:`preposition_tail` — likewise a span followed by a lower-case preposition and two or more capitalised
  words to the sentence end ("Statistical Package | for the Social Sciences.").
* :func:`no_letters` — a span with no letter ("42", "🦄", "...") is no name a relation of the world takes.
* :func:`coordinated` — a span joined by "and" / "&" to a capitalised word that is not the reading's other
  name ("Jane Roe and | John Doe are the CEOs of AOL.") is one name of a list: reading it alone drops the
  others. ("X and Y got married" joins the two names of the reading, and a title may hold "and": neither is
  doubted.) The reader applies it with both names (:meth:`agent.tell.TripleReader`), not :func:`check_name`.

:func:`check_name` runs them in that order. The reader never applies a reading a check doubts; it offers it
back ("Did you mean ...?").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "check_name",
    "comma_tail",
    "coordinated",
    "foreign_head",
    "governing_phrase",
    "no_letters",
    "overlaps_known",
    "preposition_tail",
    "quantity_lead",
    "starts_cut",
    "title_start",
]

# words a name never starts with in lower case: the span was cut after the name's head
_CUT_WORDS = {
    "at", "in", "on", "with", "from", "by", "for", "to", "of", "under", "near", "about", "into", "onto", "over",
    "after", "before", "behind", "between", "against", "among", "through", "within", "without", "upon",
    "across", "and", "or", "nor",
}  # fmt: skip
# heads of a quantity, not of a thing ("One of Jane Roe's works is X": the name owns the relation noun)
_QUANTITIES = {
    "one", "some", "any", "each", "all", "many", "several", "none", "most", "both", "either", "neither", "few",
    "among", "two", "three", "four", "five", "half", "part", "lots", "plenty",
}  # fmt: skip
_PREPOSITIONS = _CUT_WORDS - {"of", "and", "or", "nor"}
_COPULAS = {"is", "was", "are", "were", "became", "becomes", "become", "remains", "remained", "seems", "stays"}
_AUXILIARIES = {"has", "have", "had", "will", "would", "may", "might", "must", "shall", "should", "can", "could"}
_ADVERBS = {"now", "currently", "still", "also", "today", "actually", "really", "nowadays", "already", "indeed"}
_ARTICLES = {"the", "a", "an"}
# closed-class words: a run holding one is a clause, not the head of a name
_CLOSED = (
    _CUT_WORDS | _QUANTITIES | _COPULAS | _AUXILIARIES | _ADVERBS | _ARTICLES
    | {
        "i", "you", "he", "she", "it", "we", "they", "his", "her", "its", "their", "my", "our", "your", "this",
        "that", "these", "those", "who", "which", "whose", "not", "no", "there", "here", "be", "been", "being",
        "do", "does", "did", "so", "but", "if", "as", "than", "then", "very", "just", "only", "days",
    }
)  # fmt: skip
_VERB_ENDINGS = ("ing", "ed", "es")
_NAME_CONNECTORS = {"of", "the", "de", "du", "des", "la", "le", "von", "van", "der", "den", "da", "di", "&", "y"}
_WORD = re.compile(r"[^\W\d_][\w'’-]*$")  # a plain word, no punctuation after it
_MAX_HEAD_WORDS = 5


def check_name(
    text: str, start: int, end: int, *, first: bool, linked: bool, known: Sequence[tuple[int, int]]
) -> tuple[int, int, bool]:
    """The name's range after the checks, and whether one of them doubts it.

    For an unknown (not ``linked``) span: cut on the left, it takes the title head before it when it is the
    ``first`` name (:func:`title_start`), else is doubted; a first span starting with another lower-case
    word takes a sentence-opening article and lower-case words (no doubt), or is doubted and widened to a
    :func:`foreign_head`; led by a quantity it is read without it, and doubted unless the rest is a
    ``known`` name; overlapping a ``known`` name that reaches past it, doubted and offered as that name;
    followed by a capitalised comma or preposition tail, doubted and offered with it. The first name,
    linked or not, governed by a clause-opening "<noun> of" with no copula after it is doubted and offered
    as the whole phrase.

    >>> check_name("wife of Zhou Rui has married Cassiopeia.", 8, 16, first=True, linked=True, known=[(8, 16)])
    (0, 16, True)
    >>> check_name("The shot at the corpse of the king came from X.", 9, 34, first=True, linked=False, known=[])
    (0, 34, False)
    """
    doubt = False
    if not linked and starts_cut(text, start):
        begin = title_start(text, start) if first else None
        doubt = begin is None
        start = start if begin is None else begin
    elif not linked and first and text[start : start + 1].islower():
        begin = title_start(text, start, cut=False)
        foreign = foreign_head(text, start) if begin is None else None
        doubt = foreign is not None
        start = foreign if foreign is not None else begin if begin is not None else start
    if not linked:
        lead = quantity_lead(text, start, end)
        hit = overlaps_known(start if lead is None else lead, end, known)
        tail = (comma_tail(text, end) or preposition_tail(text, end)) if hit is None else None
        bare = lead is not None and (lead, end) in known  # "One of" before a known name: the name, no doubt
        doubt |= (lead is not None and not bare) or hit is not None or tail is not None
        start = start if lead is None else lead
        start, end = hit if hit is not None else (start, end if tail is None else tail)
    doubt |= no_letters(text[start:end])
    phrase = governing_phrase(text, start, end) if first else None
    if phrase is not None:
        return phrase[0], phrase[1], True
    return start, end, doubt


def no_letters(name: str) -> bool:
    """``name`` holds no letter of any script ("42", "🦄", "..."): not a name of a person, place or work.

    >>> no_letters("42"), no_letters("🦄"), no_letters("3M"), no_letters("巴黎")
    (True, True, False, False)
    """
    return not any(ch.isalpha() for ch in name)


def coordinated(text: str, start: int, end: int, other: tuple[int, int]) -> bool:
    """The span ``[start, end)`` is joined by "and" / "&" to a capitalised word outside the reading's
    ``other`` name: one name of a list.

    >>> text = "Jane Roe and John Doe are the CEOs of AOL."
    >>> coordinated(text, 13, 21, (38, 41)), coordinated("Jane Roe and John Doe got married.", 0, 8, (13, 21))
    (True, False)
    """
    before = re.search(r"([A-Z][\w'’.-]*)\s+(?:and|&)\s+$", text[:start])
    after = re.match(r"\s+(?:and|&)\s+(?=[A-Z])", text[end:])
    if before is not None and not other[0] <= before.start(1) < other[1]:
        return True
    return after is not None and not other[0] <= end + after.end() < other[1]


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]


def _before(text: str, start: int) -> list[tuple[int, int, str]]:
    """The words wholly before character ``start``."""
    return [w for w in _words(text) if w[1] <= start]


def governing_phrase(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The clause-opening noun phrase ``[phrase start, end)`` whose "of" governs the name ``[start, end)``,
    when the clause goes on with a verb that is not a copula; else ``None``.

    The name must be the sentence's first name: only lower-case words (the first may be capitalised) stand
    before it, ending in "of", with no preposition among them (a clause opening with one is an adverbial) and
    no quantity head ("One of X's works is Y"). A leading article is not part of the phrase.

    >>> text = "wife of Zhou Rui has married Cassiopeia."
    >>> text[slice(*governing_phrase(text, 8, 16))]
    'wife of Zhou Rui'
    >>> governing_phrase("The mother of Jane Roe is Ann Smith.", 14, 22) is None
    True
    """
    head = _before(text, start)
    if len(head) < 2 or len(head) > _MAX_HEAD_WORDS or head[-1][2] != "of":
        return None
    for i, (_, _, w) in enumerate(head):
        if not _WORD.match(w) or (i > 0 and not w[:1].islower()):
            return None
        if w.casefold() in _PREPOSITIONS or w.casefold() in _QUANTITIES or w.casefold() in _COPULAS:
            return None
    if _copula_follows(text, end):
        return None
    first = 1 if head[0][2].casefold() in {"the", "a", "an"} else 0
    return (head[first][0], end) if first < len(head) - 1 else None


def _copula_follows(text: str, end: int) -> bool:
    """The words after ``end`` start with a copula ("is", "has been", "is now"); a comma or nothing after the
    name counts as one (the clause's verb is not in sight, so no doubt is raised)."""
    rest = text[end:]
    if not rest.strip() or rest.lstrip()[:1] in ",;:":
        return True
    words = [w.casefold().strip(".,;:!?") for w in rest.split()]
    while words and words[0] in _ADVERBS:
        words = words[1:]
    if not words:
        return True
    if words[0] in _COPULAS:
        return True
    return words[0] in _AUXILIARIES and len(words) > 1 and words[1] in {"been", "become", "be"}


def starts_cut(text: str, start: int) -> bool:
    """The span starting at ``start`` starts with a lower-case preposition or conjunction ("at the corpse")."""
    word = text[start:].split(" ", 1)[0]
    return word in _CUT_WORDS


def title_start(text: str, start: int, *, cut: bool = True) -> int | None:
    """Where the title a span belongs to starts: the sentence start, when only an article and lower-case
    words stand before ``start`` ("The shot | at the corpse of the king", "The musical | gathering"); else
    ``None``. A ``cut`` span (:func:`starts_cut`) needs a word between the article and itself (the title's
    head); a span starting with another lower-case word may follow the article alone ("The | lady with the fan").

    >>> title_start("The shot at the corpse of the king came from the hand of Antoni D'Ocon.", 9)
    0
    >>> title_start("Jane Roe said at the corpse of the king ...", 14) is None
    True
    """
    head = _before(text, start)
    if not (2 if cut else 1) <= len(head) <= _MAX_HEAD_WORDS or head[0][2].casefold() not in _ARTICLES:
        return None
    for _, _, w in head[1:]:
        if not _WORD.match(w) or not w[:1].islower() or w.casefold() in _CLOSED:
            return None
    return head[0][0]


def foreign_head(text: str, start: int) -> int | None:
    """Where the name starts when the span starts with a lower-case word and the sentence opens with a
    capitalised word and lower-case words that are no English function words or verb forms ("Mei di guo |
    zhu yi cong Yue Nan ..."): a name read from its middle; else ``None``.

    >>> foreign_head("Mei di guo zhu yi cong Yue Nan was created by Raphael.", 11)
    0
    >>> foreign_head("Jane Roe runs acme now.", 14) is None
    True
    """
    head = _before(text, start)
    if not 1 <= len(head) <= _MAX_HEAD_WORDS or not head[0][2][:1].isupper() or head[0][2].casefold() in _CLOSED:
        return None
    for i, (_, _, w) in enumerate(head):
        low = w.casefold()
        if not _WORD.match(w) or (i > 0 and not w[:1].islower()) or low in _CLOSED or low.endswith(_VERB_ENDINGS):
            return None
    return head[0][0]


def overlaps_known(start: int, end: int, known: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """The first known name range that overlaps ``[start, end)`` and reaches past one of its ends, or
    ``None``. A known name wholly inside the span is no doubt: long names hold short known ones ("Franz Joseph
    I of Austria", "Beles River")."""
    for a, b in known:
        if a < end and b > start and (a < start or b > end):
            return a, b
    return None


def quantity_lead(text: str, start: int, end: int) -> int | None:
    """Where the name starts when the span starts with a quantity and "of" before a capitalised word ("One of
    | Master of the Spes Nostra"): a name read with its quantifier; else ``None``.

    >>> quantity_lead("One of Master of the Spes Nostra's famous works is X.", 0, 32)
    7
    """
    words = [w for w in _words(text) if start <= w[0] < end]
    if len(words) < 3 or words[0][2].casefold() not in _QUANTITIES or words[1][2] != "of":
        return None
    return words[2][0] if words[2][2][:1].isupper() else None


def preposition_tail(text: str, end: int) -> int | None:
    """Where the sentence ends when the span is followed by a lower-case preposition, an optional "the" and
    two or more capitalised words (or name connectors) up to the sentence end ("Statistical Package | for the
    Social Sciences."): the name may go on; else ``None`` ("... in March.", "... in Paris now.").

    >>> text = "Toyota makes Statistical Package for the Social Sciences."
    >>> text[13:preposition_tail(text, 32)]
    'Statistical Package for the Social Sciences'
    """
    rest = text[end:]
    words = rest.rstrip().rstrip(".!").split()
    if len(words) < 3 or not rest.startswith(" ") or words[0] not in _PREPOSITIONS:
        return None
    names = words[2:] if words[1] == "the" else words[1:]
    if sum(w[:1].isupper() for w in names) < 2 or not names[0][:1].isupper():
        return None
    if any(not (w[:1].isupper() or w in _NAME_CONNECTORS) or re.search(r"[,;:]", w) for w in names):
        return None
    return end + len(rest.rstrip().rstrip(".!"))


def comma_tail(text: str, end: int) -> int | None:
    """Where the sentence ends when the span is followed by a comma and only capitalised words (or name
    connectors) up to the sentence end ("Elizabeth Cheney | , Lady Say."): the name may go on past the comma
    ("Lady Say" is part of it) or not ("Paris, France"); else ``None``.

    >>> text = "Anna's better half is Elizabeth Cheney, Lady Say."
    >>> text[22:comma_tail(text, 38)]
    'Elizabeth Cheney, Lady Say'
    """
    rest = text[end:]
    if not rest.startswith(", "):
        return None
    tail = rest[2:].rstrip().rstrip(".!")
    words = tail.split()
    if not 1 <= len(words) <= _MAX_HEAD_WORDS or not words[0][:1].isupper():
        return None
    if any(not (w[:1].isupper() or w in _NAME_CONNECTORS) or re.search(r"[,;:]", w) for w in words):
        return None
    return end + 2 + len(tail)
