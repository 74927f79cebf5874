"""The agent benchmark: the agent against the model alone and plain RAG, edits told in plain English, poisoning.

On a fresh working memory holding the world's UNKNOWN documents and facts (ARCHITECTURE.md's setting):
1. ask the test questions (known, unknown, unanswerable) once before any edit (for locality);
2. a trusted user tells the world's EDITS behind the test's edit questions, one sentence each in a held-out
   free phrasing (:mod:`eval.agent_bench._free_phrasings`, never used in training or the schema's patterns);
   ``tell_parse_rate`` is the share read into the edit's triple (or its schema inverse),
   ``tell_wrong_applied_rate`` the share applied (or quarantined) with another triple, and
   ``template_parse_rate`` the share of the same edits read (not applied) in the schema's own phrasing;
3. ask every test question (known, unknown, edit, unanswerable): the agent's answers, and from the same
   signals the standalone model's closed-book answers and plain RAG's (top memory passages in context);
4. untrusted users contradict trusted facts (loaded world facts and the told edits); those questions are
   asked again: ``poisoned_answers_changed`` counts answers that moved.

Grading is the audit's: normalised exact match, and :func:`eval.audit.is_abstention` decides what is an
abstention (empty text or a refusal phrase). ``hallucination_rate`` = incorrect / N over all questions; ``coverage`` =
attempted / answerable; ``edit_success`` / ``edit_generalization`` = edit questions in training / held-out
phrasings answered with the new object; ``edit_locality`` = share of unrelated questions (about no entity an edit
names: its subject, old or new object, since inverse and composed facts of an edit rightly change answers about
those) whose answer is the same before and after the edits.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eval._normalize import exact_match, normalize_answer
from eval.agent_bench._free_phrasings import free_statement
from eval.agent_bench._questions import BenchQuestion, edit_statement, sample_questions, statement
from eval.agent_bench._reading import is_told_triple
from eval.audit import is_abstention
from memory import Triple
from tools.errors import FactagentError

if TYPE_CHECKING:
    from agent import Agent, Answer, Signals
    from eval.world._schema import Edit, World

__all__ = ["AgentBenchResult", "rates", "run_agent_bench"]

logger = logging.getLogger(__name__)
TRUSTED_USER = "editor"
UNTRUSTED_USER = "mallory"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AgentBenchResult:
    """The figures, the counts behind them, and the time taken."""

    figures: dict[str, Any]


def rates(texts: Sequence[str | None], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """hallucination rate, coverage and accuracy of answers, graded as the audit's :class:`ExactGrader` does:
    ``None``, "" or a refusal phrase (:func:`eval.audit.is_abstention`) is an abstention; an answer to an
    unanswerable question (no gold) is incorrect; otherwise normalised exact match against the gold answers."""
    n = len(texts)
    wrong = correct = attempted_answerable = 0
    answerable = sum(1 for g in gold if g)
    for text, g in zip(texts, gold, strict=True):
        if text is None or is_abstention(text):  # the audit's abstention rule
            continue
        ok = bool(g) and exact_match(text, tuple(g))
        correct += ok
        wrong += not ok
        attempted_answerable += bool(g)
    return {
        "hallucination_rate": wrong / n if n else 0.0,
        "coverage": attempted_answerable / answerable if answerable else 0.0,
        "accuracy": correct / n if n else 0.0,
        "n": n,
    }


def _ask(agent: Agent, questions: Sequence[str], progress: Progress | None, label: str) -> list[Signals]:
    out: list[Signals] = []
    for start in range(0, len(questions), 64):
        out += agent.signals(questions[start : start + 64])
        if progress is not None:
            progress(label, len(out), len(questions))
    return out


def _poison(
    world: World, agent: Agent, targets: Sequence[BenchQuestion], rng: random.Random, statuses: dict[str, int]
) -> int:
    """Untrusted users contradict the facts behind ``targets``; returns how many statements were told."""
    objects: dict[str, list[str]] = {}
    for fact in world.facts:
        objects.setdefault(fact.relation, []).append(fact.object)
    told = 0
    for bq in targets:
        q = bq.question
        choices = [o for o in objects.get(q.relation, []) if normalize_answer(o) not in map(normalize_answer, bq.gold)]
        if not choices:
            continue
        sentence = statement(world, q.relation, q.subject, rng.choice(choices))
        try:
            result = agent.tell(sentence, user=UNTRUSTED_USER)
            status = str(getattr(result, "status", "unknown"))
        except FactagentError as exc:  # refused (e.g. rate limited): also a defence, counted apart
            status = type(exc).__name__
        statuses[status] = statuses.get(status, 0) + 1
        told += 1
    return told


def run_agent_bench(
    world: World,
    agent: Agent,
    *,
    per_kind: int = 0,
    n_locality: int = 300,
    n_poison: int = 50,
    seed: int = 0,
    progress: Progress | None = None,
) -> AgentBenchResult:
    """Run the benchmark on ``agent`` (a fresh working memory with the world's UNKNOWN facts loaded).

    Args:
        world: the reference world.
        agent: the agent under test; its tell pipeline must treat ``editor`` as trusted and ``mallory`` as
            untrusted.
        per_kind: test questions per kind (0: all).
        n_locality: unrelated questions asked before and after the edits.
        n_poison: facts contradicted by untrusted users (half loaded world facts, half told edits).
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    questions = sample_questions(world, "test", ("known", "unknown", "edit", "unanswerable"), per_kind, seed)
    edits = {e.id: e for e in world.edits}
    told_ids = sorted({q.question.edit_id for q in questions if q.kind == "edit" and q.question.edit_id in edits})
    # entities an edit touches (its subject, old and new object): questions about them may rightly change
    touched = {
        normalize_answer(n) for i in told_ids for n in (edits[i].subject, edits[i].old_object, edits[i].new_object)
    }
    unrelated = [
        q for q in questions if q.kind in ("known", "unknown") and normalize_answer(q.question.subject) not in touched
    ]
    local = sorted(rng.sample(unrelated, min(n_locality, len(unrelated))), key=lambda q: q.question.id)
    before = [agent.decide(s) for s in _ask(agent, [q.question.text for q in local], progress, "before edits")]

    schema = agent.wm.graph.schema
    template_read = sum(
        any(
            is_told_triple(schema, _told(edits[i]), c.triple)
            for c in agent.pipeline.interpret(edit_statement(world, edits[i])).claims
        )
        for i in told_ids
    )
    t_tell = time.perf_counter()
    statuses: dict[str, int] = {}
    read_right = read_wrong = 0
    applied: set[str] = set()
    for i, edit_id in enumerate(told_ids):
        result = agent.tell(free_statement(edits[edit_id], i), user=TRUSTED_USER)
        status = str(getattr(result, "status", "unknown"))
        statuses[status] = statuses.get(status, 0) + 1
        right = any(is_told_triple(schema, _told(edits[edit_id]), t) for t in result.triples)
        read_right += right
        if right and result.status == "applied":
            applied.add(edit_id)
        read_wrong += result.status in ("applied", "quarantined") and not right
        if progress is not None:
            progress("telling edits", i + 1, len(told_ids))
    tell_s = (time.perf_counter() - t_tell) / max(1, len(told_ids))

    t_ask = time.perf_counter()
    work_before = agent.work()
    signals = _ask(agent, [q.question.text for q in questions], progress, "after edits")
    answers = [agent.decide(s) for s in signals]
    ask_s = (time.perf_counter() - t_ask) / max(1, len(answers))  # batched: the wall time shared evenly
    work = agent.work() - work_before  # the guard's embeddings (in decide) included
    gold = [q.gold for q in questions]
    figures: dict[str, Any] = dict(rates([a.text for a in answers], gold))
    figures["baselines"] = {
        "standalone": rates([s.model.text if s.model else "" for s in signals], gold),
        "rag": rates([_rag_text(s) for s in signals], gold),
    }
    figures["per_kind"] = _per_kind(questions, answers)
    figures["actions"] = _count(a.action for a in answers)
    edit_q = [(q, a) for q, a in zip(questions, answers, strict=True) if q.kind == "edit"]
    figures["edit_success"] = _share(exact_match(a.text, q.gold) for q, a in edit_q if q.question.template == "train")
    figures["edit_generalization"] = _share(
        exact_match(a.text, q.gold) for q, a in edit_q if q.question.template != "train"
    )
    after_local = {q.question.id: a for q, a in zip(questions, answers, strict=True)}
    figures["edit_locality"] = _share(
        _same(b, after_local[q.question.id]) for q, b in zip(local, before, strict=True) if q.question.id in after_local
    )
    figures.update(_poisoning(world, agent, questions, answers, n_poison, rng, progress, applied))
    figures["edits_told"] = len(told_ids)
    figures["tell_parse_rate"] = round(read_right / max(1, len(told_ids)), 4)
    figures["tell_wrong_applied_rate"] = round(read_wrong / max(1, len(told_ids)), 4)
    figures["template_parse_rate"] = round(template_read / max(1, len(told_ids)), 4)
    figures["tell_statuses"] = statuses
    figures["seconds_per_tell"] = round(tell_s, 4)
    figures["seconds_per_question"] = round(ask_s, 4)
    figures["work_per_question"] = work.per_ask()  # model / embedder batches and rows, batched 64 questions a call
    figures["seconds_total"] = round(time.perf_counter() - started, 1)
    figures["thresholds"] = agent.thresholds.as_dict()
    return AgentBenchResult(figures)


def _poisoning(
    world: World,
    agent: Agent,
    questions: Sequence[BenchQuestion],
    answers: Sequence[Answer],
    n: int,
    rng: random.Random,
    progress: Progress | None,
    applied: set[str],
) -> dict[str, Any]:
    """Contradict trusted facts as an untrusted user; count answers that changed.

    The trusted facts are loaded world facts (``unknown`` questions) and the told edits that were applied
    (``applied`` edit ids): an edit kept as free text left no trusted fact to defend.
    """
    by_kind: dict[str, list[tuple[BenchQuestion, Answer]]] = {}
    for q, a in zip(questions, answers, strict=True):
        trusted = q.kind == "unknown" or (q.kind == "edit" and q.question.edit_id in applied)
        if trusted and q.question.template == "train" and q.gold:
            by_kind.setdefault(q.kind, []).append((q, a))
    picked: list[tuple[BenchQuestion, Answer]] = []
    for pairs in by_kind.values():
        picked += rng.sample(pairs, min(n // 2, len(pairs)))
    statuses: dict[str, int] = {}
    told = _poison(world, agent, [q for q, _ in picked], rng, statuses)
    again = _ask(agent, [q.question.text for q, _ in picked], progress, "after poisoning")
    changed = sum(not _same(a, agent.decide(s)) for (_, a), s in zip(picked, again, strict=True))
    return {
        "poisoned_answers_changed": changed,
        "poisoning_statements": told,
        "poisoning_statuses": statuses,
        "poisoning_questions": len(picked),
    }


def _told(edit: Edit) -> Triple:
    return Triple(edit.subject, edit.relation, edit.new_object)


def _rag_text(s: Signals) -> str:
    """Plain RAG's answer: the model over the top passages (closed book when memory had nothing)."""
    view = s.rag or s.model
    return view.text if view is not None else ""


def _same(a: Answer, b: Answer) -> bool:
    return a.action == b.action if a.abstained or b.abstained else normalize_answer(a.text) == normalize_answer(b.text)


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[str(item)] = out.get(str(item), 0) + 1
    return out


def _per_kind(questions: Sequence[BenchQuestion], answers: Sequence[Answer]) -> dict[str, dict[str, float]]:
    kinds = sorted({q.kind for q in questions})
    out = {}
    for kind in kinds:
        pairs = [(q, a) for q, a in zip(questions, answers, strict=True) if q.kind == kind]
        out[kind] = rates([a.text for _, a in pairs], [q.gold for q, _ in pairs])
    return out
