"""Chinese names of the world's KG entities, from the Chinese slice's own table of countries (issue 23).

``source/zh/own.json`` lists each country as ``[English name, Chinese name, Chinese capital]``; the English
name is the world's label of the country (the object of its ``landmark_in_country`` facts). When the world is
loaded into a home (:func:`eval.world.load_world_into`), every country the KG already holds gets its Chinese
name as a ``@zh`` label (``KnowledgeGraph.entity(..., labels={"zh": ...})``, ``kg/_labels.py``), which is also
an alias: a Chinese question names it (``法国的首都是哪里？`` links to France) and a KG answer to a Chinese question
reads it (``Chaville在哪个国家？`` -> 法国, not "France"). The English label stays the entity's name for everyone
else. No entity is created: a country no fact names stays out of the KG (and out of English linking). The
capitals have no English name in the table, so they get none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from eval.world._source import SOURCE_DIR
from kg import WORLD_NAMESPACE
from tools.errors import InvalidInputError, WorldFormatError

if TYPE_CHECKING:
    from kg import KnowledgeGraph

__all__ = ["COUNTRIES_FILE", "name_world_entities_zh", "world_zh_names"]

logger = logging.getLogger(__name__)

COUNTRIES_FILE = SOURCE_DIR / "zh" / "own.json"


def _is_cjk_name(text: str) -> bool:
    return bool(text) and all("\u4e00" <= ch <= "\u9fff" for ch in text)


def world_zh_names(path: Path = COUNTRIES_FILE) -> dict[str, str]:
    """English country name -> Chinese name, from the table's ``countries`` rows.

    Raises:
        WorldFormatError: the file is missing, not UTF-8 JSON, or a row is not ``[English, Chinese, capital]``
            strings with a Chinese name of CJK characters only; two Chinese names for one country.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorldFormatError(f"{path}: cannot read the table of countries: {exc}") from exc
    rows = data.get("countries") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise WorldFormatError(f"{path}: no 'countries' list")
    names: dict[str, str] = {}
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) and x.strip() for x in row)):
            raise WorldFormatError(f"{path}: countries[{i}] is not [English name, Chinese name, capital]: {row!r}")
        english, chinese = row[0].strip(), row[1].strip()
        if not _is_cjk_name(chinese):
            raise WorldFormatError(f"{path}: countries[{i}]: the Chinese name {chinese!r} is not CJK characters")
        if names.get(english, chinese) != chinese:
            raise WorldFormatError(f"{path}: two Chinese names for {english!r}: {names[english]!r}, {chinese!r}")
        names[english] = chinese
    return names


def name_world_entities_zh(
    graph: KnowledgeGraph, names: Mapping[str, str] | None = None, *, namespaces: Sequence[str] = (WORLD_NAMESPACE,)
) -> int:
    """Give each entity named in ``names`` (default: :func:`world_zh_names`) its Chinese name (``@zh`` label and
    alias) in each of ``namespaces`` that labels it, among that namespace's names; idempotent.

    ``namespaces``: the world's own (default: the shared world's; the audit adds the namespace its EDITS are
    told in, whose new objects may be countries no world fact names). A user's namespace is not named.

    Returns:
        (entity, namespace) pairs named now (those already named, or not in the KG, do not count).

    Raises:
        WorldFormatError: the default table is unreadable (:func:`world_zh_names`).
        InvalidInputError: a bad namespace; an entity already has another Chinese name there.
    """
    if isinstance(namespaces, str):
        raise InvalidInputError("namespaces must be a sequence of namespace names, not one string")
    table = world_zh_names() if names is None else dict(names)
    named = 0
    for english, chinese in sorted(table.items()):
        labelled = {ns for ns, _ in graph.names_of(english)}
        for namespace in namespaces:
            if namespace not in labelled:
                continue  # no entity this namespace labels so (no fact of it names this country): none is created
            if graph.label_in(english, "zh", namespaces=[namespace]) == chinese:
                continue
            graph.entity(english, labels={"zh": chinese}, namespace=namespace)
            named += 1
    if named:
        logger.info("gave %d world entities their Chinese names", named)
    return named
