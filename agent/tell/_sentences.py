"""Sentence-level text handling: splitting a message, discourse markers, questions and chit-chat.

Nothing here knows about relations; :mod:`agent.tell._patterns` matches the cleaned sentences.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = [
    "clean_sentence",
    "is_chitchat",
    "is_question",
    "looks_like_a_name",
    "split_object",
    "split_sentences",
]

# A split point: sentence-final punctuation, whitespace, then something that can start a sentence.
_BOUNDARY = re.compile(r"(?<=[.!?;])\s+(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])|(?<=;)\s+|\n+")  # after ";" always
# Tokens that end with a period without ending the sentence.
_ABBREVIATIONS = {
    "inc.",
    "ltd.",
    "co.",
    "corp.",
    "jr.",
    "sr.",
    "dr.",
    "mr.",
    "mrs.",
    "ms.",
    "st.",
    "mt.",
    "vs.",
    "no.",
    "prof.",
    "gen.",
    "col.",
    "lt.",
    "sgt.",
    "u.s.",
    "u.k.",
    "e.g.",
    "i.e.",
    "etc.",
    "ft.",
    "ave.",
    "bros.",
    "b.",  # born: "Jane Roe (b. 1970)"
    "d.",
    "c.",
    "ca.",
}
_INITIAL = re.compile(r"(?:^|\s)(?:[A-Z]\.)+$")  # "J. R. R. Tolkien", "J.M. Meulenhoff"
# Discourse markers at the start of a sentence ("Actually, ...", "By the way, ...").
_LEADING = re.compile(
    r"^(?:(?:actually|well|so|oh|okay|ok|fyi|btw|by the way|in fact|just so you know|for the record|note that|"
    r"please note that|correction|update|news|hey|also|and|but|now|however|i think|i believe|"
    r"you should know that|remember that|please remember that|did you know that|it turns out that|"
    r"as of today|since today|from now on|these days|nowadays)\b[,:;!]?\s+)+",
    re.IGNORECASE,
)
# Hedges inside a sentence, only in lower case so that names ("Now Magazine") survive.
# Life dates around a name say nothing a relation reads: "Jane Roe (b. 1970)", "Ann Lee (1901-1980)", "Tom Hale,
# b. 1948, ..."
_LIFE_DATES = re.compile(
    r"\s*\((?:(?:b|d|c|ca|born|died)\.?\s+)?\d{3,4}(?:\s*[-–]\s*\d{0,4})?\)"
    r"|,\s+(?:b\.|born|d\.|died)\s+(?:in\s+)?\d{3,4},",
    re.IGNORECASE,
)
_INNER = re.compile(r"(?<=\s)(?:now|actually|currently|really|in fact|presently|still|meanwhile)(?:,)?\s+")
_TRAILING = re.compile(
    r"(?:,?\s+(?:now|these days|nowadays|currently|as of today|from now on|anymore"
    r"|(?:in|since|from|as of) (?:early |late |mid-)?\d{4}))+$"
)  # "... married Tom Hale in 1990": the year is no part of the name
_WH = re.compile(
    r"^(?:who|whom|whose|what|which|where|when|why|how|is|are|was|were|do|does|did|can|could|will|would|"
    r"should|shall|has|have|had|may|might)\b"
    r"|^(?:in|at|on|from|to|for|by|with|of|under|since|until)\s+(?:who|whom|whose|what|which|where|when)\b",
    re.IGNORECASE,
)  # the second line: "In which country is Adliswil" (a question without its "?")
_ASKING = re.compile(
    r"\b(?:do you know|tell me|can you tell|could you tell|i wonder|i'd like to know|i want to know|"
    r"any idea|what about|how about)\b",
    re.IGNORECASE,
)
_CHITCHAT = re.compile(
    r"^(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|night|day)|thanks|thank you|"
    r"thx|cheers|bye|goodbye|see you|see ya|ok|okay|cool|great|nice|awesome|lol|haha|yes|no|yeah|yep|nope|"
    r"sure|fine|alright|how are you|how's it going|what's up|nice to meet you|you're welcome|sorry|"
    r"never ?mind|good job|well done|wow)\b",
    re.IGNORECASE,
)
# "no longer Bob but Ann", "not Bob but Ann", "Ann, not Bob", "Ann instead of Bob".
_NOT_BUT = re.compile(r"^(?:no longer|not|not anymore)\s+(?P<old>.+?),?\s+but\s+(?:rather\s+|now\s+)?(?P<new>.+)$")
_NEW_NOT = re.compile(r"^(?P<new>.+?)(?:,\s*|\s+)(?:and\s+)?(?:not|no longer|instead of|rather than)\s+(?P<old>.+)$")
_TAIL = re.compile(
    r"(?:,\s+(?:who|which|that|since|and|as|because|according|from|until|starting)\b.*"
    r"|,?\s+(?:and nobody else|and no one else|by the way|as far as i know|i think|i believe|if i recall)$)",
    re.IGNORECASE,
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(text: str, joins: Callable[[str, str], bool] | None = None) -> list[str]:
    """The sentences of a message, in order.

    Splits after ``. ! ? ;`` before a capital (or at newlines), except after an abbreviation ("Inc.") or an
    initial ("J."), and except where ``joins(left, right)`` says a name spans the break ("Yum! Brands").
    """
    text = _fold(text)
    pieces = [p.strip() for p in _BOUNDARY.split(text) if p and p.strip()]
    out: list[str] = []
    for piece in pieces:
        if out:
            last_word = out[-1].rsplit(" ", 1)[-1].lower().lstrip("([\"'")  # "(b." as "b."
            if last_word in _ABBREVIATIONS or _INITIAL.search(out[-1]) or (joins is not None and joins(out[-1], piece)):
                out[-1] = f"{out[-1]} {piece}"
                continue
        out.append(piece)
    return out


def clean_sentence(sentence: str) -> str:
    """The sentence without discourse markers and hedges, life dates around a name ("(b. 1970)"), final
    punctuation and surrounding quotes."""
    text = _fold(sentence)
    text = _LEADING.sub("", text)
    text = _LIFE_DATES.sub("", text)
    text = _INNER.sub("", text)
    text = text.rstrip(" .!;")
    text = _TRAILING.sub("", text)
    if text[:1] in "\"'" and text[-1:] == text[:1]:
        text = text[1:-1].strip()
    return text


def is_question(sentence: str) -> bool:
    """A question: ends with "?", starts with a wh-word or auxiliary verb, or asks ("do you know ...")."""
    text = _fold(sentence)
    return text.endswith("?") or bool(_WH.match(_LEADING.sub("", text))) or bool(_ASKING.search(text))


def is_chitchat(sentence: str) -> bool:
    """Greetings, thanks and fillers: a chit-chat opener with at most a few words after it."""
    text = _fold(sentence).rstrip(" .!?")
    match = _CHITCHAT.match(text)
    return match is not None and len(text[match.end() :].split()) <= 3


def looks_like_a_name(sentence: str) -> bool:
    """The sentence holds a capitalised word after its first one (a proper name), or a number."""
    words = re.findall(r"[\w'-]+", _fold(sentence))
    return any(w[:1].isupper() or w[:1].isdigit() for w in words[1:])


def split_object(text: str) -> tuple[str, str | None]:
    """``(new object, replaced object or None)`` from the object part of a statement.

    >>> split_object("no longer Bob Smith but Ann Lee")
    ('Ann Lee', 'Bob Smith')
    >>> split_object("a lawyer")
    ('lawyer', None)
    """
    text = text.strip().rstrip(".!;,").strip()
    old: str | None = None
    match = _NOT_BUT.match(text)
    if match is None:
        match = _NEW_NOT.match(text)
    if match is not None:
        text, old = match.group("new").strip(), _strip_object(match.group("old"))
    return _strip_object(_TAIL.sub("", text)), old


def _strip_object(text: str) -> str:
    text = text.strip().rstrip(".!;,").strip()
    if text[:1] in "\"'" and text[-1:] == text[:1]:
        text = text[1:-1].strip()
    for article in ("a ", "an "):
        if text.startswith(article):
            text = text[len(article) :]
    return text.strip()
