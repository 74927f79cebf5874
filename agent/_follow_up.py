"""Follow-up questions in a conversation: "Who is the CEO of AOL?" then "Where is it headquartered?".

A question with a pronoun ("it", "he", "its", ...) is asked about the name the conversation was last about: the
subject of the most recent earlier turn that has one, as the agent links questions (``subject_of``). The chat
(``factagent chat``) and the OpenAI-compatible endpoint (the request's earlier user messages) use it, and say how
they read the question. A question without a pronoun is asked as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.tell import has_pronoun, with_antecedent

__all__ = ["follow_up"]


def follow_up(question: str, earlier: Sequence[str], subject_of: Callable[[str], str | None]) -> tuple[str, str | None]:
    """``(question to ask, the name its pronoun was read as, or None)``.

    Args:
        question: the new turn.
        earlier: the conversation's earlier turns, oldest first.
        subject_of: the subject a turn is about (the agent's question linking), ``None`` when it names none.
    """
    if not has_pronoun(question):
        return question, None
    for turn in reversed(earlier):
        name = subject_of(turn)
        if name:
            return with_antecedent(question, name)[0], name
    return question, None
