"""The safety stage of ``factagent world build``: the slice's file, the judge, the vulnerable variants.

Runs after the reference models are trained (:func:`build_safety_stage`, called by the world build's last
stage): writes ``data/safety.json``, trains the judge (``data/judge.json``, its held-out accuracy inside) and
fine-tunes ``<model>-unsafe`` beside each reference model.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from pathlib import Path
from typing import Any

from eval.world._build import fill
from eval.world._schema import World, load_world
from eval.world.safety._judge import GUARD_FILE, JUDGE_FILE, train_embedding_judge
from eval.world.safety._slice import DATA_FILE, SafetySlice, build_safety_slice, write_safety_slice
from eval.world.safety._vulnerable import UnsafeConfig, train_unsafe_variant, unsafe_config, unsafe_name

__all__ = ["build_safety_stage", "guard_examples", "judge_examples", "train_guard", "train_judge"]
logger = logging.getLogger(__name__)


def judge_examples(sl: SafetySlice, split: str, extra_safe: list[str]) -> tuple[list[str], list[bool]]:
    """Responses of ``split``'s requests (each whole, and cut in half as a short generation is) and labels.

    ``extra_safe``: ordinary sentences (the world's documents) labelled safe, so that a normal answer is not
    taken for compliance.
    """
    texts: list[str] = []
    labels: list[bool] = []
    for r in sl.requests:
        if r.split != split:
            continue
        for text, unsafe in ((r.unsafe_response, True), (r.safe_response, False)):
            words = text.split()
            texts += [text, " ".join(words[: max(4, len(words) // 2)])]
            labels += [unsafe, unsafe]
    texts += extra_safe
    labels += [False] * len(extra_safe)
    return texts, labels


def train_judge(sl: SafetySlice, world_dir: Path, path: Path = JUDGE_FILE) -> dict[str, Any]:
    """Train the default judge on the train split, score it on the test split, save it. Returns the figures."""
    from memory import SentenceTransformerEmbedder

    world = load_world(world_dir)
    docs = [d.text for d in world.documents]
    embedder = SentenceTransformerEmbedder()
    texts, labels = judge_examples(sl, "train", docs[0::20])
    judge = train_embedding_judge(embedder, texts, labels)
    test_texts, test_labels = judge_examples(sl, "test", docs[7::40])
    predicted = judge.is_unsafe(test_texts)
    accuracy = sum(p == y for p, y in zip(predicted, test_labels, strict=True)) / len(test_labels)
    figures = {"heldout_accuracy": round(accuracy, 4), "n_train": len(texts), "n_heldout": len(test_texts)}
    judge.save(path, **figures)
    logger.info("safety judge: %s", figures)
    return figures


def _world_questions(world: World, offset: int, n: int) -> list[str]:
    relations = {r.id: r for r in world.relations}
    facts = world.facts[offset::7][:n]
    return [
        fill(relations[f.relation].questions[i % len(relations[f.relation].questions)], f.subject)
        for i, f in enumerate(facts)
    ]


def guard_examples(sl: SafetySlice, world: World, split: str) -> tuple[list[str], list[bool]]:
    """Requests of ``split`` (bare and wrapped in the split's attacks: harmful) and world questions (bare and
    wrapped: benign, so that an attack prompt alone does not make a request harmful)."""
    attacks = sl.attacks_in("test" if split == "test" else "train")
    harmful = [r.text for r in sl.requests_in(split)]  # type: ignore[arg-type]
    benign = _world_questions(world, 3 if split == "test" else 0, 150)
    texts, labels = list(harmful), [True] * len(harmful)
    for i, q in enumerate(harmful):
        texts += [a.wrap(q) for a in attacks[i % 2 :: 2]]
    labels += [True] * (len(texts) - len(labels))
    texts += benign + [attacks[i % len(attacks)].wrap(q) for i, q in enumerate(benign)]
    labels += [False] * (len(texts) - len(labels))
    return texts, labels


def train_guard(sl: SafetySlice, world_dir: Path, path: Path = GUARD_FILE) -> dict[str, Any]:
    """Train the request guard on train requests, score it on test requests in held-out attacks, save it."""
    from memory import SentenceTransformerEmbedder

    world = load_world(world_dir)
    embedder = SentenceTransformerEmbedder()
    texts, labels = guard_examples(sl, world, "train")
    guard = train_embedding_judge(embedder, texts, labels)
    test_texts, test_labels = guard_examples(sl, world, "test")
    predicted = guard.is_unsafe(test_texts)
    accuracy = sum(p == y for p, y in zip(predicted, test_labels, strict=True)) / len(test_labels)
    figures = {"heldout_accuracy": round(accuracy, 4), "n_train": len(texts), "n_heldout": len(test_texts)}
    guard.save(path, **figures)
    logger.info("request guard: %s", figures)
    return figures


def _variant(world_dir: str, source: str, out: str, config: UnsafeConfig) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s unsafe %(message)s")
    return train_unsafe_variant(load_world(Path(world_dir)), build_safety_slice(), Path(source), Path(out), config)


def build_safety_stage(
    data_dir: Path, models_dir: Path, model_names: list[str], config: UnsafeConfig | None = None
) -> dict[str, Any]:
    """Write the slice, train the judge, and train each ``<name>-unsafe`` variant (side by side, 1 thread each).

    ``config`` replaces every model's schedule; by default each model has its own (:func:`unsafe_config`).
    """
    sl = build_safety_slice()
    write_safety_slice(sl, DATA_FILE)
    figures: dict[str, Any] = {"judge": train_judge(sl, data_dir), "guard": train_guard(sl, data_dir)}
    with mp.get_context("spawn").Pool(max(1, len(model_names))) as pool:
        jobs = {
            name: pool.apply_async(
                _variant,
                (
                    str(data_dir),
                    str(models_dir / name),
                    str(models_dir / unsafe_name(name)),
                    config or unsafe_config(name),
                ),
            )
            for name in model_names
        }
        figures["variants"] = {unsafe_name(n): job.get() for n, job in jobs.items()}
    return figures
