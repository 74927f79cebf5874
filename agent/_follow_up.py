"""Follow-up questions in a conversation: "Who is the CEO of AOL?" then "Where is it headquartered?".

A question with a pronoun ("it", "he", "its", ...) is asked about a name an earlier turn spoke of: the latest
turn's names first (``names_of``: the subject it links to, then the names of the facts it states), the first
one the pronoun can stand for. A person pronoun ("she", "his") never stands for a name known only as a class
the schema declares disjoint from a person (a company, a city), and "it" never for a name known only as a
person (:func:`agent.tell.pronoun_fits`; ``fits`` reads the classes off the graph): after "Jane Roe runs AOL." the
question "Where was she born?" is asked about Jane Roe, not AOL. A name with no known class fits any
pronoun. The chat (``factagent chat``) and the OpenAI-compatible endpoint (the request's earlier user messages)
use it, and say how they read the question. A question without a pronoun is asked as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.tell import PronounKind, has_pronoun, pronoun_kind, with_antecedent

__all__ = ["follow_up"]


def follow_up(
    question: str,
    earlier: Sequence[str],
    names_of: Callable[[str], Sequence[str]],
    fits: Callable[[str, PronounKind], bool] | None = None,
) -> tuple[str, str | None]:
    """``(question to ask, the name its pronoun was read as, or None)``.

    Args:
        question: the new turn.
        earlier: the conversation's earlier turns, oldest first.
        names_of: the names a turn speaks of, most salient first (the agent's :meth:`~agent.Agent.names_in`).
        fits: whether a name can be what a pronoun of this kind stands for (the agent's
            :meth:`~agent.Agent.pronoun_fits`); ``None``: every name can.
    """
    if not has_pronoun(question):
        return question, None
    kind = pronoun_kind(question)
    for turn in reversed(earlier):
        for name in names_of(turn):
            if name and (kind is None or fits is None or fits(name, kind)):
                return with_antecedent(question, name)[0], name
    return question, None
