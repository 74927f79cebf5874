"""One ask on an idle process against its floor (issue 30): what an ask costs beyond its model work.

The floor of one ask is the work no implementation of it can skip: one batched ``generate`` of the prompts
the ask sends the model, and one embedding of the question. Both are timed here on the same agent, right
after each ask, with the embedder's memo emptied first so that every ask and every floor embeds its
question afresh (as a new question would). Reported: p50 of each over ``rounds`` passes through the
questions, and their ratio (target: ask p50 <= 1.3x floor p50).

``bench/ask_load.py`` runs it on its prepared home before any server starts (``--floor-rounds``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
        agent.ask(questions[0], namespace)  # first use: template matrices, lazy imports
        asks: list[float] = []
        floors: list[float] = []
        gens: list[float] = []
        embeds: list[float] = []
        prompts: list[int] = []
        for _ in range(rounds):
            for question in questions:
                if memo is not None:
                    memo.clear()
                t0 = time.perf_counter()
                agent.ask(question, namespace)
                asks.append(time.perf_counter() - t0)
                plan = collector.plan([question], [agent.scopes(namespace)])
                t0 = time.perf_counter()
                collector.lm.generate(list(plan.prompts), max_new_tokens=collector.max_new_tokens)
                gen = time.perf_counter() - t0
                t0 = time.perf_counter()
                if inner is not None:
                    inner.embed([question])
                emb = time.perf_counter() - t0
                gens.append(gen)
                embeds.append(emb)
                floors.append(gen + emb)
                prompts.append(len(plan.prompts))
    finally:
        agent.close()
    ask_p50, floor_p50 = _p50_ms(asks), _p50_ms(floors)
    return {
        "asks": len(asks),
        "prompts_per_ask": round(float(np.mean(prompts)), 2),
        "ask_p50_ms": ask_p50,
        "floor_p50_ms": floor_p50,
        "generate_p50_ms": _p50_ms(gens),
        "embed_p50_ms": _p50_ms(embeds),
        "ask_over_floor": round(ask_p50 / floor_p50, 2) if floor_p50 else None,
    }
