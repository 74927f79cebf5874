"""The benchmark's free phrasings are held out: in no training phrasing, schema template or statement pattern.

Training phrasings are compared as the reader sees them: after the interpreter's own cleaning
(:func:`~agent.tell._sentences.clean_sentence` drops "Actually,", "now", "these days"...), so a held-out
"These days X is run by Y." is not trained as "X is now run by Y." either.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.tell import load_statement_phrasings
from agent.tell._patterns import statement_patterns
from agent.tell._reader_data import negative_phrasings, training_phrasings
from agent.tell._sentences import clean_sentence
from eval.agent_bench._free_phrasings import FREE_PHRASINGS
from eval.world._schema import World
from kg import load_schema

ROOT = Path(__file__).resolve().parents[2]


def _key(phrasing: str) -> str:
    """Case, punctuation, articles and spacing folded; both slots kept apart."""
    text = phrasing.casefold().replace("{s}", " SUBJ ").replace("{o}", " OBJ ").replace("{}", " SUBJ ")
    text = re.sub(r"\b(?:a|an|the)\b", " ", text)
    return " ".join(re.findall(r"[\w'-]+", text))


def _seen_key(phrasing: str) -> str:
    """:func:`_key` of the phrasing as the interpreter cleans a sentence before the reader reads it."""
    text = clean_sentence(phrasing.replace("{s}", "Subj").replace("{o}", "Obj"))
    return _key(text.replace("Subj", "{s}").replace("Obj", "{o}"))


def _as_statement(template: str) -> str:
    """A cloze template ("{}'s CEO is") as a statement phrasing with the object last."""
    return template.rstrip() + " {o}"


def test_free_phrasings_share_nothing_with_training_or_the_schema(bundled_world: World) -> None:
    schema = load_schema()
    held = {_key(p): (r, p) for r, ps in FREE_PHRASINGS.items() for p in ps}
    assert len(held) == sum(len(ps) for ps in FREE_PHRASINGS.values()), "a free phrasing is listed twice"
    training = [p for ps in training_phrasings().values() for p in ps] + list(negative_phrasings())
    assert len(training) > 10_000  # the whole grammar is expanded and compared, not a sample
    seen = {_key(p) for p in training} | {_seen_key(p) for p in training}
    seen |= {_key(_as_statement(p.template)) for p in statement_patterns(schema, load_statement_phrasings())}
    for spec in schema.relations:
        seen |= {_key(_as_statement(t)) for t in spec.templates}
    for rel in bundled_world.relations:
        seen |= {_key(_as_statement(t)) for t in (*rel.cloze, *rel.heldout, *rel.paraphrases)}
        seen |= {_key(t.replace("{}", "{s}", 1).replace("{}", "{o}", 1)) for t in rel.statements}
    held |= {_seen_key(p): (r, p) for r, ps in FREE_PHRASINGS.items() for p in ps}
    overlap = sorted(p for k, (_, p) in held.items() if k in seen)
    assert overlap == [], overlap


def test_free_phrasings_cover_every_world_relation_and_state_both_slots(bundled_world: World) -> None:
    assert {r.id for r in bundled_world.relations} <= set(FREE_PHRASINGS)
    for phrasings in FREE_PHRASINGS.values():
        assert len(phrasings) >= 5
        assert all(p.count("{s}") == 1 and p.count("{o}") == 1 for p in phrasings)


def test_no_agent_code_reads_the_free_phrasings() -> None:
    reads = re.compile(r"(?:import|from)\s+[\w.]*free_phrasings|FREE_PHRASINGS|free_statement")
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "agent").rglob("*.py") if reads.search(path.read_text("utf-8"))
    ]
    assert offenders == []
