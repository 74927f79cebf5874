"""``factagent demo``: the whole story on the bundled defaults, offline, in about two minutes on two cores.

1. A few test questions (known to the model, known only to memory, unanswerable) answered by the model
   alone, by plain RAG and by the agent (action and confidence of each).
2. Two of the world's edits told in plain English, and the answers changing (also for a paraphrase).
3. One edit rolled back, and its answer reverting.
4. One line on hallucination (model alone vs plain RAG vs agent) over a seeded sample of test questions.

The work happens in a temporary home with the user's settings (the calibrated thresholds included), so the
user's memory is untouched; ``--in-home`` works in the home itself.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent import Agent
    from agent._answer import Answer, ModelView, Signals
    from eval.world import Edit, Question, World

KINDS = ("known", "unknown", "unanswerable")
WHAT = {
    "known": "the model was trained on it",
    "unknown": "only the memory holds it",
    "unanswerable": "nobody knows",
}


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    demo = sub.add_parser("demo", help="model alone vs the agent, facts told and rolled back, hallucination rates")
    demo.add_argument("--model", type=Path, help="local model directory (default: config, else bundled GPT-2)")
    demo.add_argument("--n", type=int, default=2, help="questions per kind: known, unknown, unanswerable (default 2)")
    demo.add_argument("--sample", type=int, default=60, help="test questions in the hallucination line (0: skip)")
    demo.add_argument("--seed", type=int, default=0, help="seed of that sample")
    demo.add_argument("--in-home", action="store_true", help="use the home's own memory instead of a temporary one")
    demo.set_defaults(func=run)


def _one_per_relation(questions: Sequence[Question], n: int) -> list[Question]:
    """``n`` questions in training phrasings, each about a different relation (any phrasing if too few)."""
    picked: list[Question] = []
    for pool in ([q for q in questions if q.template == "train"], list(questions)):
        for q in pool:
            if len(picked) < n and q not in picked and q.relation not in {p.relation for p in picked}:
                picked.append(q)
    return picked


def _mark(text: str, gold: Sequence[str]) -> str:
    from eval import exact_match

    if not text:
        return "·  (abstains)" if gold else "✓  (abstains)"
    return "✓" if gold and exact_match(text, tuple(gold)) else "✗"


def _line(label: str, view: ModelView | None, gold: Sequence[str]) -> str:
    if view is None:
        return f"   {label}: (no passage retrieved)"
    return f"   {label}: {view.text!r:<36} p={view.prob:.2f}  {_mark(view.text, gold)}"


def _agent_line(answer: Answer, gold: Sequence[str]) -> str:
    said = repr(answer.text) if answer.text else "I don't know."
    return f"   agent       : {said:<36} {answer.action} {answer.confidence:.2f}  {_mark(answer.text, gold)}"


def _short(answer: Answer) -> str:
    if answer.abstained:
        return "I don't know (abstain)"
    edits = f" · edit {', '.join(answer.edit_ids)}" if answer.edit_ids else ""
    return f"{answer.text} ({answer.action}{edits})"


def _questions(agent: Agent, world: World, n: int) -> None:
    print("1. Questions: the model alone, plain RAG (top passages in context) and the agent")
    picked = [q for kind in KINDS for q in _one_per_relation(world.questions_in("test", kind), n)]  # type: ignore[arg-type]
    signals = agent.signals([q.text for q in picked])
    for q, s in zip(picked, signals, strict=True):
        answer = agent.decide(s)
        gold = f"gold: {q.answers[0]}" if q.answers else "no answer exists"
        print(f"[{q.kind}: {WHAT[q.kind]}] {q.text}   ({gold})")
        print(_line("model alone ", s.model, q.answers))
        print(_line("with memory ", s.rag, q.answers))
        print(_agent_line(answer, q.answers))
        print(f"                 why: {answer.reason}")
    print()


def _edits(world: World, n: int) -> list[tuple[Edit, str]]:
    """``n`` of the world's edits behind test questions, of different relations, with a question for each."""
    by_id = {e.id: e for e in world.edits}
    picked: list[tuple[Edit, str]] = []
    for q in world.questions_in("test", "edit"):
        edit = by_id.get(q.edit_id or "")
        if edit is None or q.template != "train" or edit.relation in {e.relation for e, _ in picked}:
            continue
        picked.append((edit, q.text))
        if len(picked) == n:
            break
    return picked


def _tell_and_roll_back(agent: Agent, world: World, user: str) -> tuple[set[str], list[str]]:
    """Tell two edits, show the answers change, roll the first back; returns the edited subjects and the
    edits still applied."""
    from eval.agent_bench import edit_statement

    print("2. Telling the agent two facts in plain English")
    told: list[tuple[str, str, str | None]] = []
    for edit, question in _edits(world, 2):
        paraphrase = next((p for p in edit.paraphrases if p.endswith("?")), None)
        asked = [question, *([paraphrase] if paraphrase else [])]
        before = agent.ask_many(asked)
        statement = edit_statement(world, edit)
        result = agent.tell(statement, user=user)
        print(f"you> {statement}")
        print(f"factagent> {result.message}")
        after = agent.ask_many(asked)
        for text, old, new in zip(asked, before, after, strict=True):
            print(f"   {text}  before: {_short(old)}  ->  now: {_short(new)}")
        told.append((edit.subject, question, result.edit_id))
    print()
    _, question, edit_id = told[0]
    if edit_id is not None:
        print(f"3. Rolling back edit {edit_id}")
        print(f"you> /rollback {edit_id}")
        print(f"factagent> {agent.rollback(edit_id, user=user).message}")
        print(f"   {question}  now: {_short(agent.ask(question))}")
        print()
    return {s for s, _, _ in told}, [e for _, _, e in told[1:] if e is not None]


def _summary(agent: Agent, world: World, size: int, seed: int, skip_subjects: set[str]) -> None:
    """One line: hallucination of the model alone, plain RAG and the agent on a seeded test sample."""
    from tqdm import tqdm

    from eval.agent_bench import rates

    rng = random.Random(seed)
    sample: list[Question] = []
    for kind in KINDS:
        pool = [q for q in world.questions_in("test", kind) if q.subject not in skip_subjects]  # type: ignore[arg-type]
        sample += rng.sample(pool, min(len(pool), size // len(KINDS)))
    signals: list[Signals] = []
    with tqdm(total=len(sample), desc="asking", unit="q", leave=False) as bar:
        for start in range(0, len(sample), 32):
            batch = sample[start : start + 32]
            signals += agent.signals([q.text for q in batch])
            bar.update(len(batch))
    gold = [q.answers for q in sample]
    closed = [s.model.text if s.model else "" for s in signals]
    rag = [s.rag.text if s.rag else c for s, c in zip(signals, closed, strict=True)]
    decided = [agent.decide(s).text for s in signals]
    alone, plain, ours = rates(closed, gold), rates(rag, gold), rates(decided, gold)
    counts = ", ".join(f"{sum(q.kind == k for q in sample)} {k}" for k in KINDS)
    print(f"4. Hallucination on {len(sample)} test questions ({counts}; wrong answers / all questions):")
    print(
        f"   model alone {alone['hallucination_rate']:.1%} · plain RAG {plain['hallucination_rate']:.1%} · "
        f"agent {ours['hallucination_rate']:.1%} (it answers {ours['coverage']:.0%} of the answerable ones)"
    )


def run(args: argparse.Namespace) -> int:
    """``factagent demo``."""
    from tqdm import tqdm

    from agent import Agent
    from agent.cli._agent import ensure_world_loaded
    from agent.config import Home, open_home
    from agent.wiring import load_language_model
    from eval.world import DATA_DIR, load_world
    from tools.errors import InvalidInputError

    if args.n < 1 or args.sample < 0:
        raise InvalidInputError("--n must be at least 1 and --sample at least 0")
    user_home = open_home(args.home)
    with tempfile.TemporaryDirectory(prefix="factagent-demo-") as tmp:
        home = user_home if args.in_home else Home(root=Path(tmp), settings=user_home.settings)
        with tqdm(total=2, desc="loading model and memory", leave=False) as steps:
            world = load_world(DATA_DIR)
            steps.update()
            lm = load_language_model(home, args.model) if args.model else None  # --model: a local model
            agent = Agent.open(home, lm)
            steps.update()
        try:
            documents = ensure_world_loaded(agent, world)  # its own progress bar
            where = "the home's memory" if args.in_home else "a temporary memory"
            calibrated = (
                home.settings.model_policy().calibrated_on or "not calibrated: defaults (see factagent calibrate)"
            )
            print(f"factagent demo — model {agent.lm.name}; {where}; policy thresholds: {calibrated}")
            if documents:
                print(f"loaded {documents} world documents (facts the model never saw) into memory and the KG")
            print()
            _questions(agent, world, args.n)
            edited, applied = _tell_and_roll_back(agent, world, user="demo")
            if args.sample:
                _summary(agent, world, args.sample, args.seed, edited)
            if args.in_home:  # leave the home's memory as it was
                for edit_id in applied:
                    agent.rollback(edit_id, user="demo")
        finally:
            agent.close()
    return 0
