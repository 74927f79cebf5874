"""Circuit cases from the reference world: a fact's cloze prompt and its corrupted twin.

The corrupted prompt swaps the subject for another KNOWN subject of the same relation (Knowledge Circuits),
chosen so that both prompts have the same number of tokens (positions must align for edge patching) and the
two objects start with different tokens (the logit difference must mean something). Among those, the
choice is deterministic for a seed. Up to :data:`N_REFERENCE` further subjects of the relation whose prompts
have the same length are the case's reference prompts (mean ablation averages over them).
"""

from __future__ import annotations

import random
from typing import Any

from eval.world import Fact, World
from tools.circuits import FactCase
from tools.errors import InvalidInputError
from tools.lm import PromptFormat

__all__ = ["N_REFERENCE", "fact_case", "find_fact", "relation_case_source", "relation_facts"]

N_REFERENCE = 8


def _first(tokenizer: Any, text: str) -> int:
    return int(tokenizer(" " + text.strip(), add_special_tokens=False)["input_ids"][0])


def _length(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def find_fact(world: World, relation: str, subject: str) -> Fact:
    """The world fact of ``(subject, relation)``; :class:`InvalidInputError` names what is unknown."""
    known = {r.id for r in world.relations}
    if relation not in known:
        raise InvalidInputError(f"unknown relation {relation!r} (known: {', '.join(sorted(known))})")
    for fact in world.facts:
        if fact.relation == relation and fact.subject == subject.strip():
            return fact
    raise InvalidInputError(f"unknown subject {subject!r} for relation {relation!r}")


def relation_facts(world: World, relation: str) -> list[Fact]:
    """The KNOWN facts of a relation; :class:`InvalidInputError` for an unknown relation."""
    known = {r.id for r in world.relations}
    if relation not in known:
        raise InvalidInputError(f"unknown relation {relation!r} (known: {', '.join(sorted(known))})")
    return [f for f in world.facts_in("known") if f.relation == relation]


def fact_case(
    world: World,
    fact: Fact,
    tokenizer: Any,
    *,
    seed: int = 0,
    template: int = 0,
    context: PromptFormat | None = None,
    answer: str | None = None,
) -> FactCase:
    """The circuit case of ``fact`` with the relation's cloze template ``template``.

    With ``context`` (the model's prompt format) the fact is also stated in context before the cloze, with the
    relation's first statement template (the paper's in-context analysis); the corrupted prompt states its own
    subject's fact. ``answer`` replaces the gold object (in the context too: a counterfactual given in context).

    Raises:
        InvalidInputError: no other KNOWN subject of the relation fits (same length, other first token).
    """
    rel = world.relation(fact.relation)
    cloze = rel.cloze[template % len(rel.cloze)]
    gold_object = answer.strip() if answer else fact.object

    def render(subject: str, obj: str) -> str:
        if context is None:
            return cloze.format(subject)
        return context.cloze_with_context([rel.statements[0].format(subject, obj)], cloze.format(subject))

    prompt = render(fact.subject, gold_object)
    length, gold = _length(tokenizer, prompt), _first(tokenizer, gold_object)
    others = [f for f in world.facts_in("known") if f.relation == fact.relation and f.subject != fact.subject]
    random.Random(f"{seed}:{fact.id}").shuffle(others)
    twin = None
    references: list[str] = []
    for other in others:
        text = render(other.subject, other.object)
        if _length(tokenizer, text) != length:
            continue
        if twin is None and _first(tokenizer, other.object) != gold:
            twin = (other, text)
        elif len(references) < N_REFERENCE:
            references.append(text)
        if twin is not None and len(references) >= N_REFERENCE:
            break
    if twin is not None:
        return FactCase(
            prompt=prompt,
            subject=fact.subject,
            answer=gold_object,
            corrupt_prompt=twin[1],
            corrupt_subject=twin[0].subject,
            corrupt_answer=twin[0].object,
            reference_prompts=tuple(references),
        )
    raise InvalidInputError(
        f"no other known subject of {fact.relation!r} gives a prompt of {length} tokens with another answer token"
    )


def relation_case_source(world: World, *, n: int = 10, seed: int = 0) -> Any:
    """A :data:`tools.circuits.CaseSource` over ``world``: up to ``n`` seeded KNOWN facts of the relation
    (the edited subject excluded) that have a corrupted twin. Unknown relations raise InvalidInputError."""

    def cases(relation: str, subject: str, tokenizer: Any) -> list[FactCase]:
        facts = [f for f in relation_facts(world, relation) if f.subject != subject.strip()]
        random.Random(f"{seed}:{relation}").shuffle(facts)
        out: list[FactCase] = []
        for fact in facts:
            if len(out) >= n:
                break
            try:
                out.append(fact_case(world, fact, tokenizer, seed=seed))
            except InvalidInputError:
                continue
        return out

    return cases
