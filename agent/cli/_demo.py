"""``factagent demo``: the reference model answering alone, then with retrieved sentences in context."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import numpy as np


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    demo = sub.add_parser("demo", help="closed-book vs retrieval-augmented answers on the bundled defaults")
    demo.add_argument("--model", type=Path, help="local model directory (default: config, else bundled GPT-2)")
    demo.add_argument("--n", type=int, default=4, help="questions per kind (known, unknown)")
    demo.set_defaults(func=run)


def _doc_vectors(embedder: Any, texts: list[str], cache_dir: Path) -> np.ndarray:
    """Embed the corpus once; later runs read the cache under the home directory."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"world-docs-{key}.npy"
    if path.is_file():
        return np.load(path)
    vectors = embedder.embed(texts)
    np.save(path, vectors)
    return vectors


def _one_per_relation(questions: list[Any], n: int) -> list[Any]:
    """``n`` questions with training templates, each about a different relation."""
    picked: list[Any] = []
    seen: set[str] = set()
    for q in questions:
        if q.template == "train" and q.relation not in seen and len(picked) < n:
            picked.append(q)
            seen.add(q.relation)
    return picked


def run(args: argparse.Namespace) -> int:
    """Print, per question: gold, closed-book answer and confidence, and the retrieval-augmented answer."""
    from tqdm import tqdm

    from agent.config import open_home
    from eval._normalize import exact_match
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR, MODEL_NAMES, MODELS_DIR
    from memory import SentenceTransformerEmbedder
    from tools.lm import HFLanguageModel

    home = open_home(args.home)
    settings = home.settings
    steps = tqdm(total=4, desc="loading", leave=False)
    world = load_world(DATA_DIR)
    steps.update()
    model_dir = args.model or (Path(settings.model.path) if settings.model.path else MODELS_DIR / MODEL_NAMES["gpt2"])
    lm = HFLanguageModel.load(model_dir, device=settings.model.device or None)
    steps.update()
    embedder = SentenceTransformerEmbedder(settings.embedder.model_dir or None, device=settings.embedder.device or None)
    steps.update()
    docs = list(world.documents)
    vectors = _doc_vectors(embedder, [d.text for d in docs], home.path("cache"))
    steps.update()
    steps.close()

    questions = _one_per_relation(world.questions_in("test", "known"), args.n) + _one_per_relation(
        world.questions_in("test", "unknown"), args.n
    )
    print(f"factagent demo — model {lm.name}, embedder {embedder.name}, {len(docs)} corpus sentences\n")
    tally = {"closed": 0, "rag": 0}
    for q in questions:
        closed = lm.generate([lm.prompt_format.question(q.text)])[0]
        scores = vectors @ embedder.embed([q.text])[0]
        top = [docs[i].text for i in np.argsort(-scores)[:3]]
        rag = lm.generate([lm.prompt_format.with_context(top, q.text)])[0]
        ok_closed, ok_rag = exact_match(closed.text, q.answers), exact_match(rag.text, q.answers)
        tally["closed"] += ok_closed
        tally["rag"] += ok_rag
        print(f"[{q.kind}] {q.text}   (gold: {q.answers[0]})")
        print(f"   model alone : {closed.text!r:<34} p={closed.first_token_prob or 0:.2f}  {'✓' if ok_closed else '✗'}")
        print(f"   with memory : {rag.text!r:<34} p={rag.first_token_prob or 0:.2f}  {'✓' if ok_rag else '✗'}")
        print(f"   retrieved   : {top[0]}  (score {float(np.max(scores)):.2f})\n")
    n = len(questions)
    print(f"correct: model alone {tally['closed']}/{n}, with retrieved sentences {tally['rag']}/{n}")
    print("known facts were taught to the model; unknown ones exist only in the document corpus.")
    return 0
