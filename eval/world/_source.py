"""Read the raw, MIT-licensed source data bundled in ``eval/world/source``.

Two sources feed the reference world:

* LRE relation files (``source/lre/*.json``): ``{name, prompt_templates, samples: [{subject, object}]}``;
* Pitfalls Wikidata conflict sets (``source/pitfalls/*_edit.json``): only their ``triples`` lists hold true
  facts (an ``edits`` entry's ``new_object`` is counterfactual, and a later edit's ``object`` may be an
  earlier counterfactual), so only ``triples`` are read.

Everything here is pure: it reads files and returns sorted, de-duplicated records.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from eval.world._schema import Relation

SOURCE_DIR = Path(__file__).with_name("source")
_PITFALLS_SETS = ("coverage_edit", "reverse_edit", "composite_edit")
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


def clean_text(text: str) -> str:
    """Decode literal ``\\uXXXX`` sequences (some LRE objects carry them) and squeeze whitespace."""
    text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    return " ".join(text.split())


def load_relations(source_dir: Path = SOURCE_DIR) -> tuple[Relation, ...]:
    """Load relation specs, folding the Pitfalls paraphrases into the cloze / held-out template lists."""
    raw = json.loads((source_dir / "relations.json").read_text(encoding="utf-8"))
    paraphrases = _pitfalls_paraphrases(source_dir)
    specs = []
    for item in raw["relations"]:
        cloze = list(item["cloze"])
        heldout = list(item["heldout"])
        if item["source"].startswith("wikidata:"):
            pid = item["source"].split(":", 1)[1]
            para = paraphrases[pid]
            cloze += [_template(para[i]) for i in item.get("pitfalls_train", [])]
            heldout += [_template(para[i]) for i in item.get("pitfalls_heldout", [])]
        heldout_final = tuple(dict.fromkeys(h for h in heldout if h not in cloze))
        taught = set(cloze) | set(item["questions"])
        extra = tuple(t for t in item.get("paraphrases", []) if t not in heldout_final and t not in taught)
        specs.append(
            Relation(
                id=item["id"],
                label=item["label"],
                source=item["source"],
                functional=bool(item["functional"]),
                cloze=tuple(dict.fromkeys(cloze)),
                questions=tuple(item["questions"]),
                statements=tuple(item["statements"]),
                heldout=heldout_final,
                inverse=item.get("inverse"),
                paraphrases=extra,
            )
        )
    return tuple(specs)


def _template(text: str) -> str:
    return " ".join(text.replace("his(her)", "their").split()).rstrip(" ,")


def _pitfalls_paraphrases(source_dir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in ("round_prompts", "conflict_prompts"):
        out.update(json.loads((source_dir / "pitfalls" / f"{name}.json").read_text(encoding="utf-8")))
    return out


def read_pairs(spec: Relation, source_dir: Path = SOURCE_DIR) -> list[tuple[str, str]]:
    """Return the (subject, object) pairs of one relation, one object per subject, sorted.

    Subjects with more than one distinct object are dropped, so every question has one answer.
    """
    kind, name = spec.source.split(":", 1)
    objects: dict[str, set[str]] = defaultdict(set)
    if kind == "lre":
        data = json.loads((source_dir / "lre" / f"{name}.json").read_text(encoding="utf-8"))
        for sample in data["samples"]:
            objects[clean_text(sample["subject"])].add(clean_text(sample["object"]))
    elif kind == "wikidata":
        for set_name in _PITFALLS_SETS:
            records = json.loads((source_dir / "pitfalls" / f"{set_name}.json").read_text(encoding="utf-8"))
            for record in records:
                for triple in record["triples"]:
                    if triple["relation"]["id"] == name:
                        objects[clean_text(triple["subject"]["label"])].add(clean_text(triple["object"]["label"]))
    else:
        raise ValueError(f"unknown relation source {spec.source!r}")
    pairs = [(s, next(iter(o))) for s, o in objects.items() if len(o) == 1 and s and _usable(s, next(iter(o)))]
    return sorted(pairs)


def _usable(subject: str, obj: str) -> bool:
    """Skip pairs that make poor cloze facts: Wikidata ids as labels, self-loops, very long names."""
    if not obj or subject == obj:
        return False
    if re.fullmatch(r"Q\d+", subject) or re.fullmatch(r"Q\d+", obj):
        return False
    return len(subject) <= 60 and len(obj) <= 40
