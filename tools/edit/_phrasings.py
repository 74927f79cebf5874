"""Other phrasings of an edited fact, found in the corpus: more keys for MEMIT to fit the new object through.

A corpus sentence that names the request's subject and, after it, the old object states the very fact being
edited in the corpus's own words (``"The CEO of Alibaba is Daniel Zhang."`` for the request
``"Alibaba's CEO is" -> ...``). Cut before the old object, it is one more prompt that should now end in the
new object. The model learnt the fact from such sentences, so fitting the edit through them too moves what the
model reads there, not only what the request's own wording reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tools.edit._request import EditRequest

__all__ = ["corpus_phrasings", "phrasings_per_request"]


def _stands_alone(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` is a whole name: no letter or digit touches it, and no capitalised word follows."""
    before = text[start - 1] if start > 0 else " "
    after = text[end:]
    if before.isalnum() or (after[:1].isalnum()):
        return False
    return re.match(r" [A-Z]", after) is None  # "Alibaba Group ..." is another entity than "Alibaba"


def corpus_phrasings(
    corpus: Sequence[str] | None, requests: Sequence[EditRequest], per_request: int
) -> list[EditRequest]:
    """Up to ``per_request`` extra requests per request, in request order (:func:`phrasings_per_request`)."""
    return [extra for found in phrasings_per_request(corpus, requests, per_request) for extra in found]


def phrasings_per_request(
    corpus: Sequence[str] | None, requests: Sequence[EditRequest], per_request: int
) -> list[tuple[EditRequest, ...]]:
    """For each request, up to ``per_request`` corpus sentences stating the old fact, cut before it.

    A sentence qualifies when the subject stands alone in it (:func:`_stands_alone`), the old object follows
    the subject, and the cut prompt differs from the request's own prompt. Requests without ``target_old``
    get none. The extra requests keep the subject, the new object and the relation.
    """
    if not corpus or per_request <= 0:
        return [() for _ in requests]
    out: list[tuple[EditRequest, ...]] = []
    for r in requests:
        found: list[str] = []
        old = r.target_old or ""
        for text in corpus if old else ():
            if len(found) >= per_request:
                break
            at = text.find(r.subject)
            if at < 0 or not _stands_alone(text, at, at + len(r.subject)):
                continue
            obj = text.find(old, at + len(r.subject))
            if obj < 0:
                continue
            prompt = text[:obj].rstrip()
            if prompt and prompt != r.prompt.strip() and prompt not in found:
                found.append(prompt)
        out.append(tuple(EditRequest(p, r.subject, r.target_new, r.target_old, r.relation) for p in found))
    return out
