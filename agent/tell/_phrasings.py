"""Statement phrasings (``fa:statement``) of the relation schema file, for the template interpreter.

``kg/schema/world.ttl`` may give a relation ``fa:statement`` phrasings besides its ``fa:template`` ones:
ways documents and users *state* a fact (``"{} is led by chief executive"``, the object follows). They are
kept apart from ``fa:template`` because those also drive question linking and the model's paraphrase
prompts; the KG's schema reader ignores them, so this module reads them from the same file.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from rdflib import Graph

from kg import FA, REL
from tools.errors import ConfigError

__all__ = ["load_statement_phrasings"]

logger = logging.getLogger(__name__)


def load_statement_phrasings(path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """Relation id -> its ``fa:statement`` phrasings, from ``path`` (default: the packaged world schema).

    Raises:
        ConfigError: the file cannot be read or parsed, or a phrasing has no single ``{}`` slot.
    """
    graph = Graph()
    try:
        if path is None:
            data = resources.files("kg").joinpath("schema/world.ttl").read_text(encoding="utf-8")
        else:
            data = Path(path).read_text(encoding="utf-8")
        graph.parse(data=data, format="turtle")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read schema file {path}: {exc}") from exc
    except Exception as exc:  # rdflib raises several unrelated types for bad Turtle
        raise ConfigError(f"schema {path or 'kg/schema/world.ttl'} is not valid Turtle: {exc}") from exc
    found: dict[str, list[str]] = {}
    for subject, phrasing in graph.subject_objects(FA.statement):
        relation = str(subject).removeprefix(str(REL))
        text = str(phrasing)
        if text.count("{}") != 1:
            raise ConfigError(f"fa:statement {text!r} of {relation} needs exactly one '{{}}' slot for the subject")
        found.setdefault(relation, []).append(text)
    return {relation: tuple(sorted(texts)) for relation, texts in sorted(found.items())}
