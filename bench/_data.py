"""Benchmark data: fact sentences, questions, derived vectors for very large sizes, and exact neighbours.

Everything here is deterministic for a given seed, and the sentence stream is prefix-stable: the first 10k
sentences of a 100k run are the 10k sentences of a 10k run, so rows at different sizes describe nested corpora.

Sentences come from the bundled reference world (``eval/world/data``): first its document corpus (one true
statement per fact), then relation statement templates (``eval/world/source/relations.json``) filled with world
entities of the right kinds — a subject seen with the relation and an object seen with it — optionally behind a
short qualifier ("As of 2020, ..."). Sampling is uniform over that combination space (about 6M sentences), so the
corpus mixes all relations in proportion to how many sentences each can form, and no size up to a few million
runs out. Queries are the world's questions ("Who is the CEO of ABB Group?").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Why qualifiers: the 17 relations x entity pairs x 2 templates give ~760k sentences, fewer than 1M.
QUALIFIERS = (
    "",
    "As of 2015, ",
    "As of 2020, ",
    "According to the archive, ",
    "Reportedly, ",
    "Records show that ",
    "It is documented that ",
    "Sources state that ",
)
_DRAW_BLOCK = 65_536
DERIVED_MIX_MAX = 0.5  # derived_vectors: upper bound of the second base vector's weight
DERIVED_NOISE = 0.25  # derived_vectors: norm of the Gaussian noise before normalising


@dataclass(frozen=True)
class _Relation:
    """One relation's slice of the combination space."""

    subjects: tuple[str, ...]
    objects: tuple[str, ...]
    statements: tuple[str, ...]  # two-slot templates "The CEO of {} is {}."

    @property
    def size(self) -> int:
        return len(self.subjects) * len(self.objects) * len(self.statements) * len(QUALIFIERS)


def _world_dir() -> Path:
    import eval.world

    return Path(eval.world.__file__).resolve().parent / "data"


def _qualified(qualifier: str, template: str, subject: str, obj: str) -> str:
    # Lower-case the template's first word ("The CEO of" -> "the CEO of") but never an entity name.
    if qualifier and not template.startswith("{}"):
        template = template[0].lower() + template[1:]
    return qualifier + template.format(subject, obj)


def fact_sentences(n: int, *, seed: int = 0, world_dir: Path | None = None) -> list[str]:
    """``n`` distinct short fact sentences, deterministic and prefix-stable in ``n``.

    Args:
        n: how many sentences (>= 1; at most the ~6M the combination space holds).
        seed: random seed of the template/entity sampling.
        world_dir: directory of the world's ``*.jsonl`` files (default: the bundled world).

    Returns:
        The sentences, the world's documents first.

    Raises:
        ValueError: ``n`` is not positive or exceeds what the world can phrase.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out: list[str] = []
    seen: set[str] = set()
    for sentence in _sentence_stream(seed, world_dir or _world_dir()):
        if sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
            if len(out) == n:
                return out
    raise ValueError(f"the world phrases only {len(out)} distinct sentences, asked for {n}")


def _sentence_stream(seed: int, world_dir: Path) -> Iterator[str]:
    from eval.world import load_world

    world = load_world(world_dir)
    yield from (doc.text for doc in world.documents)
    subjects: dict[str, set[str]] = {}
    objects: dict[str, set[str]] = {}
    for fact in world.facts:
        subjects.setdefault(fact.relation, set()).add(fact.subject)
        objects.setdefault(fact.relation, set()).add(fact.object)
    relations = [
        _Relation(tuple(sorted(subjects[r.id])), tuple(sorted(objects[r.id])), tuple(r.statements))
        for r in world.relations
        if r.id in subjects and r.statements
    ]
    ends = np.cumsum([rel.size for rel in relations])
    total = int(ends[-1])
    rng = np.random.default_rng(seed)
    drawn: set[int] = set()
    # The stream ends once most of the space was drawn; fact_sentences() then reports the shortfall.
    while len(drawn) < total * 0.9:
        for code in rng.integers(0, total, size=_DRAW_BLOCK).tolist():
            if code in drawn:
                continue
            drawn.add(code)
            which = int(np.searchsorted(ends, code, side="right"))
            rel = relations[which]
            local = code - (int(ends[which - 1]) if which else 0)
            local, q = divmod(local, len(QUALIFIERS))
            local, t = divmod(local, len(rel.statements))
            s, o = divmod(local, len(rel.objects))
            yield _qualified(QUALIFIERS[q], rel.statements[t], rel.subjects[s], rel.objects[o])


def query_texts(n: int, *, seed: int = 0, world_dir: Path | None = None) -> list[str]:
    """``n`` distinct question strings from the world's question set, in a seeded order.

    Raises:
        ValueError: ``n`` is not positive or exceeds the number of distinct questions (~6.8k).
    """
    from eval.world import load_world

    questions = list(dict.fromkeys(q.text for q in load_world(world_dir or _world_dir()).questions))
    if not 1 <= n <= len(questions):
        raise ValueError(f"queries must be in 1..{len(questions)}, got {n}")
    order = np.random.default_rng(seed).permutation(len(questions))[:n]
    return [questions[i] for i in order.tolist()]


def derived_vectors(
    base: np.ndarray, n: int, *, seed: int = 0, mix_max: float = DERIVED_MIX_MAX, noise: float = DERIVED_NOISE
) -> np.ndarray:
    """``n`` unit vectors with the structure of real sentence embeddings, from ``base`` real ones.

    Embedding 1M sentences takes ~45 min on 2 cores, so very large sizes use derived vectors. Row ``i`` is
    ``base[i]`` for ``i < len(base)`` (real embeddings of the first sentences); every later row is
    ``normalise(base[a] + w * base[b] + noise * g / sqrt(d))`` with ``a, b`` uniform over the base rows,
    ``w ~ U(0, mix_max)`` and ``g`` standard normal: a paraphrase-like neighbour of ``base[a]`` pulled towards
    another fact. So the set has the real vectors' anisotropy and clusters (each base vector gets ~n/len(base)
    close neighbours, the hard case for approximate indexes), not the easy spread of random points.

    Args:
        base: ``(m, d)`` float32 unit rows (real embeddings).
        n: rows wanted (``n >= m``).
        seed: random seed.
        mix_max: upper bound of the second vector's weight.
        noise: norm of the Gaussian noise before normalising.

    Returns:
        ``(n, d)`` float32, rows L2-normalised.

    Raises:
        ValueError: ``n < len(base)`` or ``base`` is empty.
    """
    m, d = base.shape
    if m == 0 or n < m:
        raise ValueError(f"need 1 <= len(base) <= n, got len(base)={m}, n={n}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    out[:m] = base
    step = 100_000  # bounded temporaries: a chunk is ~150 MB at d=384
    for start in range(m, n, step):
        size = min(step, n - start)
        a = rng.integers(0, m, size=size)
        b = rng.integers(0, m, size=size)
        w = rng.uniform(0.0, mix_max, size=(size, 1)).astype(np.float32)
        g = rng.standard_normal((size, d), dtype=np.float32) * np.float32(noise / np.sqrt(d))
        chunk = base[a] + w * base[b] + g
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start : start + size] = chunk
    return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product neighbours: ``(len(queries), k)`` row indices of ``vectors``, best first.

    Scans ``vectors`` in chunks so 1M x 384 needs no ``(q, 1M)`` score matrix at once.
    """
    k = min(k, len(vectors))
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    step = 131_072
    for start in range(0, len(vectors), step):
        scores = queries @ vectors[start : start + step].T  # (q, chunk)
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        cand_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        cand_ids = np.concatenate([best_ids, part + start], axis=1)
        keep = np.argsort(-cand_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(cand_scores, keep, axis=1)
        best_ids = np.take_along_axis(cand_ids, keep, axis=1)
    return best_ids


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray, k: int) -> float:
    """Mean fraction of each query's exact top-``k`` that a system returned in its top ``k``."""
    if len(found) != len(truth):
        raise ValueError(f"{len(found)} result lists for {len(truth)} queries")
    hits = [len(set(f[:k]) & set(t[:k].tolist())) / min(k, len(t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) if hits else float("nan")
