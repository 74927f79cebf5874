"""The lifelong edit pool: counterfactual edits of every KNOWN fact, for sequential editing up to T = 1000+.

The world's EDITS (``edits.jsonl``, ids ``e0000``-``e0599``) are also asked about as ``edit`` questions, so
their facts leave the audit's KNOWN questions (:mod:`eval.world._build`). Raising their number would change
the audit; instead the remaining KNOWN facts get edits of their own in ``edits_lifelong.jsonl``, with ids
continuing after the world's (``e0600``, ...), that are never turned into questions. The lifelong pool is the
world's edits followed by these (:func:`lifelong_pool`): one edit per KNOWN fact (2,105 in the bundled world).

Each lifelong edit is built like a world edit: a counterfactual object drawn from the other objects of the
same relation, the relation's first training cloze as the prompt, paraphrases from its held-out templates
first (then its other training clozes), and neighbourhood prompts about other KNOWN subjects of the relation
with their true answers. Everything is drawn from a generator seeded by the world's seed, over facts in id
order, so the file is the same on every build.

Which edits a model can take part in is decided at bench time (``eval.editing.select_cases``: the unedited
model must answer the edit prompt with the old object); :func:`known_counts` reports how many per model.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from eval.world._build import WorldConfig, counterfactual_edit
from eval.world._schema import Edit, Fact, World, _record
from tools.errors import WorldFormatError

__all__ = ["LIFELONG_FILE", "build_lifelong_edits", "lifelong_pool", "load_lifelong_edits", "write_lifelong_edits"]

LIFELONG_FILE = "edits_lifelong.jsonl"


def build_lifelong_edits(world: World, config: WorldConfig | None = None) -> tuple[Edit, ...]:
    """One edit for every KNOWN fact of ``world`` that no world edit touches, ids after the world's.

    Deterministic: the same world and seed give the same edits (independent of ``PYTHONHASHSEED``).
    """
    config = config or WorldConfig()
    relations = {r.id: r for r in world.relations}
    by_rel: dict[str, list[Fact]] = defaultdict(list)
    for fact in world.facts:
        by_rel[fact.relation].append(fact)
    edited = {e.fact_id for e in world.edits}
    first = 1 + max((int(e.id[1:]) for e in world.edits), default=-1)
    rng = random.Random(f"{config.seed}:edits-lifelong")
    edits = []
    todo = sorted((f for f in world.facts if f.split == "known" and f.id not in edited), key=lambda f: f.id)
    for i, fact in enumerate(todo):
        r = relations[fact.relation]
        pool = sorted({f.object for f in by_rel[fact.relation]} - {fact.object})
        if not pool:  # a relation with a single object has no counterfactual
            continue
        edits.append(counterfactual_edit(f"e{first + i:04d}", fact, r, by_rel[fact.relation], pool, rng, config))
    return tuple(edits)


def write_lifelong_edits(edits: tuple[Edit, ...], directory: Path) -> Path:
    """Write ``edits`` as ``directory/edits_lifelong.jsonl`` (replaced whole); returns the path."""
    path = Path(directory) / LIFELONG_FILE
    lines = [json.dumps(asdict(e), ensure_ascii=False, sort_keys=True) for e in edits]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_lifelong_edits(directory: Path | str, world: World | None = None) -> tuple[Edit, ...]:
    """Read ``directory/edits_lifelong.jsonl``; with ``world``, check every edit names one of its KNOWN facts.

    Raises:
        WorldFormatError: the file is missing, a line is malformed, or an edit names an unknown fact.
    """
    path = Path(directory) / LIFELONG_FILE
    if not path.is_file():
        raise WorldFormatError(f"missing lifelong edit file {path} (run `factagent world build`)")
    edits = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                edits.append(_record(Edit, json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise WorldFormatError(f"{path.name} line {lineno}: {exc}") from exc
    if world is not None:
        known = {f.id for f in world.facts if f.split == "known"}
        for edit in edits:
            if edit.fact_id not in known:
                raise WorldFormatError(f"{path.name}: edit {edit.id} names {edit.fact_id!r}, not a KNOWN fact")
    return tuple(edits)


def lifelong_pool(world: World, directory: Path | str) -> World:
    """``world`` whose ``edits`` are its own followed by the lifelong ones (for ``world_edit_cases``)."""
    from dataclasses import replace

    return replace(world, edits=world.edits + load_lifelong_edits(directory, world))
