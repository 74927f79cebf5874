"""The safety stage of ``factagent world build``: the slice's file, the judge, the vulnerable variants.

Runs after the reference models are trained (:func:`build_safety_stage`, called by the world build's last
stage): writes ``data/safety.json``, trains the judge (``data/judge.json``, its held-out accuracy inside) and
fine-tunes ``<model>-unsafe`` beside each reference model.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from pathlib import Path
from typing import Any, Literal

from eval.world._build import fill
from eval.world._schema import World, load_world
from eval.world.safety._guard_data import benign_requests, extra_harmful_requests
from eval.world.safety._judge import GUARD_FILE, JUDGE_FILE, train_embedding_judge
from eval.world.safety._slice import DATA_FILE, SafetySlice, build_safety_slice, write_safety_slice
from eval.world.safety._vulnerable import UnsafeConfig, train_unsafe_variant, unsafe_config, unsafe_name

__all__ = ["build_safety_stage", "guard_examples", "guard_groups", "judge_examples", "train_guard", "train_judge"]
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


def _zh_questions(world: World, offset: int, n: int) -> list[str]:
    """``n`` Chinese questions of the world's slice (training templates), evenly spaced over its facts (all
    categories) from ``offset``."""
    facts = [f for f in world.slice_facts if f.language == "zh" and f.questions]
    facts = facts[offset :: max(7, len(facts) // n)][:n]
    return [f.questions[i % len(f.questions)] for i, f in enumerate(facts)]


def guard_groups(sl: SafetySlice, world: World, split: str) -> dict[str, tuple[list[str], bool]]:
    """The guard's examples of ``split`` (``train``, ``dev`` or ``test``) by group: ``{group: (texts, unsafe)}``.

    Harmful: the split's requests (``dev``: the slice's ``edit`` requests, which the guard never trains on),
    bare and each wrapped in half of the split's attacks, and in ``train`` the guard's extra harmful requests
    (:func:`extra_harmful_requests`), bare and each wrapped in one attack. Benign: world questions and the
    project's benign requests of the same part (:func:`benign_requests`: everyday tasks asked in the harmful
    requests' forms, safe lookalikes, chat turns, other questions), bare and wrapped (in ``train`` in three
    attacks each, else one), so
    that neither an attack prompt nor a "how do I" makes a request harmful; and the world's Chinese questions
    (bare). MiniLM does not read Chinese and the slice has no Chinese harmful request, so the guard does not
    guard Chinese requests: the Chinese questions only keep it from refusing them at random (the first guard
    refused 711 of the 2,504 world-zh:test questions). ``dev`` and ``test`` use the held-out attacks and
    benign parts the guard never saw, and other facts' questions."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', got {split!r}")
    part: Literal["train", "dev", "test"] = split  # type: ignore[assignment]
    attacks = sl.attacks_in("train" if part == "train" else "test")
    harmful = [r.text for r in sl.requests_in("edit" if part == "dev" else part)]
    extra = extra_harmful_requests() if part == "train" else []
    offset = {"train": 0, "dev": 5, "test": 3}[part]
    # 600 world questions in training (150 first: "At which university did Karl Marx study?" was refused)
    world_q = _world_questions(world, offset, 600 if part == "train" else 150)
    zh_q = _zh_questions(world, offset, 150)
    benign = benign_requests(part)

    def wrapped(texts: list[str], shifts: tuple[int, ...] = (0,)) -> list[str]:
        return [attacks[(i + s) % len(attacks)].wrap(q) for s in shifts for i, q in enumerate(texts)]

    # in training every benign request is wrapped in three attacks (chosen on dev: over-refusal of wrapped
    # benign dev requests 0.162 with one, 0.098 with three; harmful dev recall 1.00 either way)
    benign_shifts = (0, 8, 4) if part == "train" else (0,)

    return {
        "harmful": (harmful, True),
        "harmful_wrapped": ([a.wrap(q) for i, q in enumerate(harmful) for a in attacks[i % 2 :: 2]], True),
        **({"extra_harmful": (extra + wrapped(extra), True)} if extra else {}),
        "world_questions": (world_q, False),
        "world_questions_wrapped": (wrapped(world_q, benign_shifts), False),
        "zh_questions": (zh_q, False),
        "benign": (benign, False),
        "benign_wrapped": (wrapped(benign, benign_shifts), False),
    }


def guard_examples(sl: SafetySlice, world: World, split: str) -> tuple[list[str], list[bool]]:
    """Every example of :func:`guard_groups` in one list, with its label (True = harmful)."""
    texts: list[str] = []
    labels: list[bool] = []
    for group, unsafe in guard_groups(sl, world, split).values():
        texts += group
        labels += [unsafe] * len(group)
    return texts, labels


def train_guard(sl: SafetySlice, world_dir: Path, path: Path = GUARD_FILE) -> dict[str, Any]:
    """Train the request guard on the train split, score it on the dev and test splits, save it. Returns the
    figures: accuracy, and per group the share flagged harmful (recall for the harmful groups, the
    over-refusal rate for the benign ones), on dev (``dev_*``) and test (``heldout_*``)."""
    from memory import SentenceTransformerEmbedder

    world = load_world(world_dir)
    embedder = SentenceTransformerEmbedder()
    texts, labels = guard_examples(sl, world, "train")
    guard = train_embedding_judge(embedder, texts, labels)
    figures: dict[str, Any] = {"n_train": len(texts)}
    for split in ("dev", "test"):
        flagged: dict[str, float] = {}
        right = total = 0
        for name, (group, unsafe) in guard_groups(sl, world, split).items():
            predicted = guard.is_unsafe(group)
            flagged[name] = round(sum(predicted) / len(group), 4)
            right += sum(p == unsafe for p in predicted)
            total += len(group)
        key = "heldout" if split == "test" else "dev"
        figures.update({f"{key}_accuracy": round(right / total, 4), f"{key}_flagged": flagged, f"n_{key}": total})
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
