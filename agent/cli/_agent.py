"""``factagent ask``, ``factagent calibrate`` and ``factagent agent-bench``."""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent import Agent
    from agent.config import Home
    from eval.world import World

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``ask``, ``calibrate`` and ``agent-bench`` commands."""
    ask = sub.add_parser("ask", help="answer one question (with its action, confidence and citations)")
    ask.add_argument("question")
    ask.add_argument("--namespace", default="default", help="memory namespace (default: default)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(func=run_ask)

    cal = sub.add_parser("calibrate", help="fit the routing thresholds on the world's dev questions")
    cal.add_argument("--target", type=float, default=0.02, help="maximum hallucination rate (default 0.02)")
    cal.add_argument("--limit", type=int, default=0, help="a seeded sample of this many dev questions (0: all)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument(
        "--dataset",
        default="world:dev",
        choices=CALIBRATION_SETS,
        help="the dev questions fitted on: the world's (default) or its Chinese slice's (world-zh:dev: the "
        "home's memory is prepared as for the world-zh audit)",
    )
    _unanswerable_args(cal)
    cal.set_defaults(func=run_calibrate)

    bench = sub.add_parser("agent-bench", help="agent vs model alone vs plain RAG on the world's test questions")
    bench.add_argument("--per-kind", type=int, default=0, help="test questions per kind (0: all)")
    bench.add_argument("--locality", type=int, default=300, help="unrelated questions asked before and after")
    bench.add_argument("--poison", type=int, default=50, help="trusted facts contradicted by untrusted users")
    bench.add_argument("--calibrate-limit", type=int, default=0, help="dev questions when calibrating (0: all)")
    _unanswerable_args(bench)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=run_bench)


# two other phrasings, as before the agreement gate: six kept 60 more known answers on dev
# (bench/paraphrase_agreement.py) but answered 3 of 100 unanswerable agent-bench questions (target <= 2%)
# and cost 12-14 ms an ask; `calibrate --paraphrases 6` opts in
CALIBRATE_PARAPHRASES = 2
CALIBRATION_SETS = ("world:dev", "world-zh:dev")
_FITTED_KINDS = ("known", "unknown", "unanswerable")


def _unanswerable_args(parser: Any) -> None:
    parser.add_argument(
        "--max-unanswerable",
        type=float,
        default=0.02,
        help="calibration: the largest share of unanswerable dev questions answered (default 0.02)",
    )
    parser.add_argument(
        "--unanswerable-confidence",
        type=float,
        default=0.95,
        help="calibration: hold --max-unanswerable as a one-sided upper bound at this confidence (default 0.95; "
        "0: as the observed share of the dev questions)",
    )
    parser.add_argument(
        "--paraphrases",
        type=int,
        default=CALIBRATE_PARAPHRASES,
        help=f"calibration: other phrasings asked per question, whose agreement is fitted as a threshold "
        f"(default {CALIBRATE_PARAPHRASES}; saved with the thresholds)",
    )
    parser.add_argument(
        "--schema-phrasing",
        action="store_true",
        help="calibration: also fit the policy's schema-phrasing step (answer in the relation's own templates "
        "where all the paraphrases overrule the answer to the question's words; off by default)",
    )


def check_unanswerable_args(args: argparse.Namespace) -> None:
    """Reject a bad ``--max-unanswerable`` / ``--unanswerable-confidence`` / ``--paraphrases`` before any work.

    Raises:
        InvalidInputError: a rate outside [0, 1], a confidence outside (0, 1) or a count outside [0, 12].
    """
    from tools.errors import InvalidInputError

    if not 0.0 <= args.max_unanswerable <= 1.0:
        raise InvalidInputError(f"--max-unanswerable must be a rate in [0, 1], got {args.max_unanswerable}")
    level = args.unanswerable_confidence
    if not 0.0 <= level < 1.0:
        raise InvalidInputError(f"--unanswerable-confidence must be in [0, 1) (0: off), got {level}")
    if not 0 <= args.paraphrases <= 12:
        raise InvalidInputError(f"--paraphrases must be in [0, 12], got {args.paraphrases}")


def _world() -> World:
    from eval.world import DATA_DIR, load_world

    return load_world(DATA_DIR)


def ensure_world_loaded(agent: Agent, world: World) -> int:
    """Load the world's UNKNOWN documents and facts, and its concepts, into the agent's memory unless they are
    there; returns the documents loaded."""
    from tqdm import tqdm

    from agent.config import TellSettings
    from agent.tell import TellPipeline
    from eval.world import WORLD_SCOPE, load_world_concepts, load_world_into, name_world_entities_zh
    from tools.errors import InvalidInputError

    if WORLD_SCOPE in agent.wm.memory.scopes() and agent.wm.memory.count(WORLD_SCOPE) > 0:
        load_world_concepts(world, agent.wm.graph)  # a home loaded before concepts were loaded with the facts
        if name_world_entities_zh(agent.wm.graph):  # ... or before its countries had Chinese names
            agent.wm.refresh_entities()
        return 0
    with tqdm(total=None, desc="loading world", unit="doc", leave=False) as bar:
        try:  # the tell pipeline's bulk door (one logged edit per load)
            pipeline = agent.pipeline
        except InvalidInputError:  # a read-only agent: a pipeline for the load only (no reader needed)
            pipeline = TellPipeline.open(agent.wm, TellSettings(interpreter="templates"))
        report = load_world_into(
            world, agent.wm.db, agent.wm.memory, agent.wm.graph, progress=bar.update, pipeline=pipeline
        )
    agent.wm.refresh_entities()
    return report.documents


def run_ask(args: argparse.Namespace) -> int:
    """Answer one question."""
    from agent import Agent
    from agent._agent import check_question
    from agent.config import open_home

    check_question(args.question)  # before loading anything
    agent = Agent.open(open_home(args.home), with_tell=False)
    try:
        answer = agent.ask(args.question, namespace=args.namespace)
    finally:
        agent.close()
    cites = [e.citation.edit_id or e.citation.assertion_id or e.citation.item_id for e in answer.citations]
    if args.json:
        row = {"text": answer.text, "action": answer.action, "confidence": answer.confidence}
        extra = {"latency_s": answer.latency_s, "model_calls": answer.model_calls}
        print(json.dumps({**row, "citations": cites, "reason": answer.reason, **extra}))
    else:
        print(answer.text or "I don't know.", f"[{answer.action} · {answer.confidence:.2f} · {answer.reason}]")
    return 0


def calibrate_agent(
    agent: Agent,
    world: World,
    home: Home,
    *,
    target: float,
    limit: int,
    seed: int,
    max_unanswerable: float = 0.02,
    confidence: float | None = None,
    paraphrases: int = CALIBRATE_PARAPHRASES,
    schema_route: bool = False,
    dataset: str = "world:dev",
) -> Any:
    """Fit the thresholds on the world's dev questions (known, unknown, unanswerable) and save them.

    Graded as the audit and agent-bench grade: normalised exact match, and :func:`eval.audit.is_abstention`
    decides what is an abstention (one grader, one abstention rule for calibration and both benchmarks).
    The agent asks ``paraphrases`` other phrasings of each question from here on (their agreement is one
    of the fitted thresholds, so the number is saved with them as ``[policy] paraphrases``). With
    ``schema_route`` the policy's schema-phrasing step is fitted too (off otherwise: ``schema_model`` 1.01).
    ``dataset`` ``"world-zh:dev"`` fits on the Chinese slice's dev questions instead (its UNKNOWN statements
    must be in the memory: :func:`eval.audit.prepare_world_zh_memory`).
    """
    from tqdm import tqdm

    from agent._calibrate import calibrate
    from agent.config import save_settings
    from eval import exact_match
    from eval.audit import is_abstention
    from tools.errors import InvalidInputError

    agent.collector.n_paraphrases = paraphrases
    if dataset not in CALIBRATION_SETS:
        raise InvalidInputError(f"dataset must be one of {', '.join(CALIBRATION_SETS)}, not {dataset!r}")
    dev: list[Any]
    if dataset == "world-zh:dev":
        dev = [q for q in world.slice_questions if q.id.startswith("zq") and q.split == "dev"]
    else:
        dev = list(world.questions)
    dev = [q for q in dev if q.split == "dev" and q.kind in _FITTED_KINDS]
    if limit and len(dev) > limit:
        dev = sorted(random.Random(seed).sample(dev, limit), key=lambda q: q.id)
    signals = []
    with tqdm(total=len(dev), desc="calibrating", unit="q", leave=False) as bar:
        for start in range(0, len(dev), 64):
            batch = dev[start : start + 64]
            signals += agent.signals([q.text for q in batch])
            bar.update(len(batch))
    result = calibrate(
        signals,
        [q.answers for q in dev],
        lambda a, g: exact_match(a, tuple(g)),
        target=target,
        max_unanswerable=max_unanswerable,
        confidence=confidence,
        abstains=is_abstention,
        schema_route=schema_route,
    )
    t = result.thresholds
    settings = home.settings
    unavailable = sorted({name for s in signals for name in s.unavailable})
    policy = settings.model_policy().model_copy(
        update={
            **{k: float(v) if not isinstance(v, bool) else v for k, v in t.as_dict().items()},
            "target_hallucination": target,
            "paraphrases": paraphrases,
            "calibrated_on": f"{'world-zh' if dataset == 'world-zh:dev' else 'world'} dev, {result.n} questions"
            + (f"; without {', '.join(unavailable)}" if unavailable else ""),
        }
    )
    # kept under the model's name (a served model's signals differ); [policy] stays the local model's
    update: dict[str, Any] = {"policies": {**settings.policies, settings.model_name(): policy}}
    if settings.model.backend == "hf":
        update["policy"] = policy
    save_settings(home, settings.model_copy(update=update))
    agent.thresholds = t
    return result


def run_calibrate(args: argparse.Namespace) -> int:
    """``factagent calibrate``."""
    from agent import Agent
    from agent.config import open_home
    from tools.errors import InvalidInputError

    if not 0.0 <= args.target <= 1.0:
        raise InvalidInputError(f"--target must be a rate in [0, 1], got {args.target}")
    check_unanswerable_args(args)

    home = open_home(args.home)
    world = _world()
    agent = Agent.open(home, with_tell=False)
    try:
        if args.dataset == "world-zh:dev":
            from eval.audit import prepare_world_zh_memory

            prepare_world_zh_memory(agent.wm, world)
        else:
            ensure_world_loaded(agent, world)
        result = calibrate_agent(
            agent,
            world,
            home,
            target=args.target,
            limit=args.limit,
            seed=args.seed,
            max_unanswerable=args.max_unanswerable,
            confidence=args.unanswerable_confidence or None,
            paraphrases=args.paraphrases,
            schema_route=args.schema_phrasing,
            dataset=args.dataset,
        )
    finally:
        agent.close()
    print(
        f"calibrated on {result.n} dev questions: hallucination {result.hallucination_rate:.3f} "
        f"(target {result.target}), coverage {result.coverage:.3f}, unanswerable answered "
        f"{result.unanswerable_answered:.3f} (at most {result.max_unanswerable}; "
        f"budget {result.unanswerable_budget} questions)"
        + ("" if result.feasible else "  — target not reachable; fewest hallucinations chosen")
    )
    print("thresholds:", json.dumps(result.thresholds.as_dict()), f"saved to {home.root / 'config.toml'}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """``factagent agent-bench``: a fresh working memory in a temporary home, settings from the user's home."""
    from tqdm import tqdm

    from agent import Agent
    from agent.config import Home, open_home
    from eval.agent_bench import run_agent_bench

    check_unanswerable_args(args)
    user_home = open_home(args.home)
    world = _world()
    bars: dict[str, Any] = {}

    def progress(label: str, done: int, total: int) -> None:
        bar = bars.get(label) or bars.setdefault(label, tqdm(total=total, desc=label, leave=False))
        bar.update(done - bar.n)

    roles = {"editor": "trusted", "mallory": "untrusted"}
    with tempfile.TemporaryDirectory(prefix="factagent-bench-") as tmp:
        settings = _bench_settings(user_home.settings, roles)
        home = Home(root=Path(tmp), settings=settings)
        agent = Agent.open(home)
        try:
            ensure_world_loaded(agent, world)
            calibrated_in_run = not settings.model_policy().calibrated_on
            if calibrated_in_run:
                calibrate_agent(
                    agent,
                    world,
                    home,
                    target=settings.model_policy().target_hallucination,
                    limit=args.calibrate_limit,
                    seed=args.seed,
                    max_unanswerable=args.max_unanswerable,
                    confidence=args.unanswerable_confidence or None,
                    paraphrases=args.paraphrases,
                    schema_route=args.schema_phrasing,
                )
            result = run_agent_bench(
                world,
                agent,
                per_kind=args.per_kind,
                n_locality=args.locality,
                n_poison=args.poison,
                seed=args.seed,
                progress=progress,
            )
        finally:
            agent.close()
            for bar in bars.values():
                bar.close()
    figures = {**result.figures, "calibrated_in_run": calibrated_in_run, "split": "test"}
    if args.json:
        print(json.dumps(figures))
    else:
        _print_table(figures)
    return 0


def _bench_settings(settings: Any, roles: dict[str, str]) -> Any:
    """The user's settings, with the benchmark's trusted editor and untrusted user, and no rate limit."""
    tell = getattr(settings, "tell", None)
    if tell is None or not hasattr(tell, "roles"):
        return settings
    merged = {**tell.roles, **roles}
    # no rate limit: the poisoning step must meet the trust policy, not the limiter
    update = {"roles": merged, "edits_per_minute": 0}
    return settings.model_copy(update={"tell": tell.model_copy(update=update)})


def _print_table(f: dict[str, Any]) -> None:
    rows = [("agent", f), ("standalone", f["baselines"]["standalone"]), ("rag", f["baselines"]["rag"])]
    print(f"{'setup':<12}{'halluc.':>9}{'coverage':>10}{'accuracy':>10}{'n':>7}")
    for name, r in rows:
        print(f"{name:<12}{r['hallucination_rate']:>9.3f}{r['coverage']:>10.3f}{r['accuracy']:>10.3f}{r['n']:>7}")
    print(
        f"edits: success {f['edit_success']:.3f}, held-out paraphrases {f['edit_generalization']:.3f}, "
        f"unrelated unchanged {f['edit_locality']:.3f}; poisoned answers changed: {f['poisoned_answers_changed']}"
    )
    w = f.get("work_per_question")
    if w:
        print(
            f"per question: {w['model_prompts']:.2f} model prompts in {w['model_batches']:.3f} batched calls, "
            f"{w['embed_texts']:.2f} texts embedded in {w['embed_batches']:.3f} calls"
        )
