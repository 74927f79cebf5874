"""Non-restrictive relative clauses, read as statements of their own.

"ARM Holdings, which is headquartered in Bristol, makes chips." states two things: that ARM Holdings is
headquartered in Bristol, and that it makes chips. Read as one sentence, a phrasing matches across the commas
and takes "ARM Holdings, which" for a subject. :func:`relative_clauses` rewrites such a sentence into its clause
and its main statement, each with the antecedent named:

- ``"X, which|who VP, REST."`` -> ``"X VP."``, ``"X REST."`` (the clause between the commas is about X);
- ``"X, which Y VERB, REST."`` -> ``"Y VERB X."``, ``"X REST."`` (the clause has its own subject: X is its object);
- ``"X, whose N is Y, REST."`` -> ``"X's N is Y."``, ``"X REST."``;
- ``"MAIN, which|who VP."`` at the end -> ``"MAIN."``, ``"Z VP."`` where Z is the capitalised name MAIN ends with
  (none: the clause is left out, as the object reading drops it anyway);
- an appositive ``"X, [the] N of Y, VP."`` -> ``"X is the N of Y."``, ``"X VP."`` ("Jane Roe, CEO of AOL, married
  John Doe." was read with the subject "Jane Roe, CEO of AOL").

The clause comes first, so what it says about a name (Jane Roe runs a company: a person) is known when the main
statement is read. Only a comma followed by ``which``, ``who`` or ``whose`` opens a clause, so names with commas
("Adam Clayton Powell, Jr.", "Matson, Inc.") stay whole.
"""

from __future__ import annotations

import re

__all__ = ["relative_clauses"]

_SUFFIX = r"(?:, (?:Jr|Sr|Inc|Ltd|Co|Corp|LLC|PLC|II|III|IV)\.?)"  # "James R. Jordan, Sr.": a comma inside a name
_INNER = re.compile(rf"^(?P<head>.+?), (?P<wh>which|who|whose) (?P<clause>[^,]+{_SUFFIX}*), (?P<rest>.+)$")
_FINAL = re.compile(rf"^(?P<head>.+?), (?P<wh>which|who|whose) (?P<clause>[^,]+{_SUFFIX}*?)[.!]?$")
# the noun after "the" / "a", or in lower case, or an acronym ("CEO"): "Mary, Queen of Scots" is a name
_APPOSITIVE = re.compile(
    r"^(?P<head>[A-Z][^,]*?), (?:(?:the|a|an) (?P<any>[^,]{1,40}?)|(?P<noun>(?:[a-z]|[A-Z]{2,}\b)[^,]{0,39}?)) of "
    r"(?P<of>[^,]+), (?P<rest>(?!(?:and|or|who|whose|which|that) )[a-z].+)$"
)
_VERBISH = re.compile(r"\b(?:is|was|are|were|has|had|have|will|would|who|which|that)\b")
_DETERMINERS = {"the", "a", "an", "its", "his", "her", "their", "our", "my", "your", "this", "that"}
_NAME_JOINERS = {"of", "de", "la", "le", "von", "van", "der", "del", "da", "and", "&"}


def relative_clauses(sentence: str) -> list[str]:
    """The sentence's statements with its non-restrictive relative clause read apart (see the module)."""
    text = sentence.strip()
    if text.endswith("?"):
        return [sentence]
    appositive = _APPOSITIVE.match(text)
    noun = (appositive.group("any") or appositive.group("noun")) if appositive is not None else ""
    if appositive is not None and not _VERBISH.search(noun):
        head, of = appositive.group("head").strip(), appositive.group("of").strip()
        return [f"{head} is the {noun} of {of}.", f"{head} {appositive.group('rest').strip()}"]
    if not re.search(r", (?:which|who|whose) ", text):
        return [sentence]
    inner = _INNER.match(text)
    if inner is not None:
        head = inner.group("head").strip()
        return [_clause(head, inner.group("wh"), inner.group("clause")), f"{head} {inner.group('rest').strip()}"]
    final = _FINAL.match(text)
    if final is None:
        return [sentence]
    head = final.group("head").strip()
    antecedent = _trailing_name(head)
    main = f"{head}."
    return [main] if antecedent is None else [main, _clause(antecedent, final.group("wh"), final.group("clause"))]


def _clause(antecedent: str, wh: str, clause: str) -> str:
    clause = clause.strip().rstrip(".!")
    if wh == "whose":
        return f"{antecedent}'s {clause}."
    first = clause.split()[0]
    has_subject = wh == "which" and (first[:1].isupper() or first.lower() in _DETERMINERS)
    return f"{clause} {antecedent}." if has_subject else f"{antecedent} {clause}."


def _trailing_name(head: str) -> str | None:
    """The capitalised name ``head`` ends with ("Jane Roe runs Acme Corp" -> "Acme Corp"), if any."""
    words = head.split()
    start = len(words)
    while start > 1 and (words[start - 1][:1].isupper() or words[start - 1][:1].isdigit()):
        start -= 1
        if start > 1 and words[start - 1].lower() in _NAME_JOINERS and words[start - 2][:1].isupper():
            start -= 1
    if start == len(words) or start == 0:
        return None
    return " ".join(words[start:])
