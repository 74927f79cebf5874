"""One ask on an idle process against its floor (issue 30): what an ask costs beyond its model work.

The floor of one ask is the work no implementation of it can skip: one batched ``generate`` of the prompts
the ask sends the model, and one embedding of the question. Both are timed here on the same agent, right
after each ask, with the embedder's memo emptied first so that every ask and every floor embeds its
question afresh (as a new question would). Reported: p50 of each over ``rounds`` passes through the
questions, and their ratio (target: ask p50 <= 1.3x floor p50).

Two floors: ``floor`` generates every prompt of the ask's plan (what an ask sent before the routing gates
of :meth:`agent.SignalCollector.run` skipped the prompts the policy would not read; comparable with earlier
runs), ``floor_sent`` only the prompts the ask's generate calls were sent (recorded during the ask; its
score calls, such as the familiarity rows scored first, are not in it): the stricter one now.
``floor_calls`` replays every model call the ask made, its ``score`` calls (the familiarity rows) and its
``generate`` prompts, each once, plus the embedding: the ask's own model work with nothing around it.

``bench/ask_load.py`` runs it on its prepared home before any server starts (``--floor-rounds``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["idle_ask_vs_floor"]


def _p50_ms(xs: Sequence[float]) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, 50)), 1)


def idle_ask_vs_floor(
    home: Path, questions: Sequence[str], rounds: int = 3, namespace: str = "client0"
) -> dict[str, Any]:
    """Time ``Agent.ask`` and its floor for each question, ``rounds`` times, in this process.

    Args:
        home: a prepared home (world facts loaded).
        questions: asked one at a time, in order, each round.
        rounds: passes through ``questions`` (the first ask of all is a warm-up, not counted).
        namespace: whose memory is searched (with the shared ``world``).

    Returns:
        ``ask_p50_ms``, ``floor_p50_ms`` (``generate_p50_ms`` + ``embed_p50_ms`` each measured), their
        ratio, the prompts per ask and the number of asks timed.
    """
    from agent import Agent
    from agent.config import open_home

    agent = Agent.open(open_home(home))
    try:
        memo, collector = agent.embedder, agent.collector
        inner = memo.inner if memo is not None else None
        lm = collector.lm
        generate = lm.generate
        sent: list[str] = []
        scored: list[tuple[list[str], list[str]]] = []
        scoring: Any = lm  # a model that scores (the familiarity rows are scored first) has ``score``
        score = getattr(scoring, "score", None)
        if score is not None:
            scoring.score = _recording_scores(score, scored)
        for name in ("generate", "generate_traced", "generate_texts"):  # record what the ask generates
            call = getattr(lm, name, None)
            if call is not None:
                setattr(lm, name, _recording(call, sent))
        agent.ask(questions[0], namespace)  # first use: template matrices, lazy imports
        asks: list[float] = []
        floors: list[float] = []
        gens: list[float] = []
        embeds: list[float] = []
        floors_sent: list[float] = []
        floors_calls: list[float] = []
        prompts: list[int] = []
        prompts_sent: list[int] = []
        for _ in range(rounds):
            for question in questions:
                if memo is not None:
                    memo.clear()
                sent.clear()
                scored.clear()
                t0 = time.perf_counter()
                agent.ask(question, namespace)
                asks.append(time.perf_counter() - t0)
                ran, score_calls = list(sent), list(scored)
                plan = collector.plan([question], [agent.scopes(namespace)])
                t0 = time.perf_counter()
                generate(list(plan.prompts), max_new_tokens=collector.max_new_tokens)
                gen = time.perf_counter() - t0
                t0 = time.perf_counter()
                if ran:
                    generate(ran, max_new_tokens=collector.max_new_tokens)
                gen_sent = time.perf_counter() - t0
                t0 = time.perf_counter()
                for rows, continuations in score_calls:
                    assert score is not None  # recorded only through it
                    score(rows, continuations)
                scores = time.perf_counter() - t0
                t0 = time.perf_counter()
                if inner is not None:
                    inner.embed([question])
                emb = time.perf_counter() - t0
                gens.append(gen)
                embeds.append(emb)
                floors.append(gen + emb)
                floors_sent.append(gen_sent + emb)
                floors_calls.append(scores + gen_sent + emb)
                prompts.append(len(plan.prompts))
                prompts_sent.append(len(ran))
    finally:
        agent.close()
    ask_p50, floor_p50, sent_p50 = _p50_ms(asks), _p50_ms(floors), _p50_ms(floors_sent)
    calls_p50 = _p50_ms(floors_calls)
    return {
        "asks": len(asks),
        "prompts_per_ask": round(float(np.mean(prompts)), 2),
        "prompts_sent_per_ask": round(float(np.mean(prompts_sent)), 2),
        "ask_p50_ms": ask_p50,
        "floor_p50_ms": floor_p50,
        "generate_p50_ms": _p50_ms(gens),
        "embed_p50_ms": _p50_ms(embeds),
        "ask_over_floor": round(ask_p50 / floor_p50, 2) if floor_p50 else None,
        "floor_sent_p50_ms": sent_p50,
        "ask_over_floor_sent": round(ask_p50 / sent_p50, 2) if sent_p50 else None,
        "floor_calls_p50_ms": calls_p50,
        "ask_over_floor_calls": round(ask_p50 / calls_p50, 2) if calls_p50 else None,
    }


def _recording(call: Callable[..., Any], sent: list[str]) -> Callable[..., Any]:
    """``call`` (a model's generate method), appending the prompts it is sent to ``sent``."""

    def recorded(prompts: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        sent.extend(prompts)
        return call(prompts, *args, **kwargs)

    return recorded


def _recording_scores(call: Callable[..., Any], scored: list[tuple[list[str], list[str]]]) -> Callable[..., Any]:
    """``call`` (a model's ``score``), appending each call's prompts and continuations to ``scored``."""

    def recorded(prompts: Sequence[str], continuations: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        scored.append((list(prompts), list(continuations)))
        return call(prompts, continuations, *args, **kwargs)

    return recorded
