"""``factagent memory ...``, ``factagent kg ...`` and ``factagent retrieve``: the working memory from a shell."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from tools.errors import InvalidInputError


def _as_of(text: str) -> datetime:
    """An argparse type: an ISO-8601 time; a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _scope_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="user_id scope")
    parser.add_argument("--agent", help="agent_id scope")
    parser.add_argument("--run", help="run_id scope")


def _scope(args: argparse.Namespace) -> Any:
    from memory import Scope

    scope = Scope(user_id=args.user, agent_id=args.agent, run_id=args.run)
    return None if scope.is_empty else scope


def register(sub: Any) -> None:
    """Add the ``memory`` and ``kg`` command groups and ``retrieve``."""
    memory = sub.add_parser("memory", help="the vector memory: load the world, search, history")
    cmds = memory.add_subparsers(dest="memory_command", required=True, metavar="SUBCOMMAND")
    load = cmds.add_parser("load-world", help="load the reference world's documents and facts (memory + KG)")
    load.add_argument("--include-known", action="store_true", help="also the KNOWN facts (default: UNKNOWN only)")
    load.set_defaults(func=_load_world)
    search = cmds.add_parser("search", help="semantic search (scores: cosine similarity, higher = closer)")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5)
    search.add_argument("--as-of", type=_as_of, help="what memory held at this time (ISO 8601)")
    _scope_args(search)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=_search)
    history = cmds.add_parser("history", help="every version of one memory item")
    history.add_argument("item_id")
    history.set_defaults(func=_history)

    kg = sub.add_parser("kg", help="the knowledge graph: facts, history, Pitfalls conflict counts")
    kcmds = kg.add_subparsers(dest="kg_command", required=True, metavar="SUBCOMMAND")
    facts = kcmds.add_parser("facts", help="valid facts about an entity (linked from a mention)")
    facts.add_argument("subject")
    facts.add_argument("relation", nargs="?")
    facts.add_argument("--as-of", type=_as_of)
    facts.add_argument("--history", action="store_true", help="include invalidated assertions")
    facts.set_defaults(func=_facts)
    pitfalls = kcmds.add_parser("pitfalls", help="how many Pitfalls coverage/reverse/composite conflicts are found")
    pitfalls.add_argument("--limit", type=int, help="first N cases of each set")
    pitfalls.add_argument("--json", action="store_true")
    pitfalls.set_defaults(func=_pitfalls)

    retrieve = sub.add_parser("retrieve", help="hybrid retrieval (KG + memory) for a question, with citations")
    retrieve.add_argument("question")
    retrieve.add_argument("-k", type=int, default=5)
    retrieve.add_argument("--as-of", type=_as_of)
    _scope_args(retrieve)
    retrieve.add_argument("--json", action="store_true")
    retrieve.set_defaults(func=_retrieve)


def _open(args: argparse.Namespace) -> Any:
    from agent.config import open_home
    from agent.wiring import open_working_memory

    return open_working_memory(open_home(args.home))


def _load_world(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agent.config import open_home
    from agent.tell import TellPipeline
    from agent.wiring import open_working_memory
    from eval.world import DATA_DIR, load_world, load_world_into, world_documents

    world = load_world(DATA_DIR)
    home = open_home(args.home)
    with open_working_memory(home) as wm:
        # the bulk door of the tell pipeline: one logged edit per load, by the trusted source "world"
        pipeline = TellPipeline.open(wm, home.settings)
        total = len(world_documents(world, include_known=args.include_known))
        with tqdm(total=total, desc="loading world", unit="doc") as bar:
            report = load_world_into(
                world,
                wm.db,
                wm.memory,
                wm.graph,
                include_known=args.include_known,
                progress=bar.update,
                pipeline=pipeline,
            )
        wm.memory.flush()
    edit = f" as edit {report.edit_id} (an admin's rollback undoes it)" if report.edit_id else ""
    print(f"loaded {report.documents} documents, {report.assertions} assertions ({report.skipped} already there){edit}")
    return 0


def _search(args: argparse.Namespace) -> int:
    with _open(args) as wm:
        hits = wm.memory.search(args.query, k=args.k, scope=_scope(args), as_of=args.as_of)
    for hit in hits:
        if args.json:
            row = {"id": hit.item.id, "version": hit.item.version, "score": hit.score, "text": hit.item.text}
            print(json.dumps(row))
        else:
            print(f"{hit.score:.3f}  {hit.item.id} v{hit.item.version}  {hit.item.text}")
    return 0


def _history(args: argparse.Namespace) -> int:
    with _open(args) as wm:
        for item in wm.memory.history(args.item_id):
            print(f"v{item.version} {item.status:<10} {item.valid_from:%Y-%m-%d %H:%M:%S} {item.text}")
    return 0


def _facts(args: argparse.Namespace) -> int:
    with _open(args) as wm:
        links = wm.entities.link(args.subject)
        if not links:
            raise InvalidInputError(f"no entity matches {args.subject!r}")
        entity = links[0].entity
        if args.history:
            rows = wm.graph.history(entity.iri, args.relation)
        else:
            rows = wm.graph.facts(entity.iri, args.relation, as_of=args.as_of)
        for a in rows:
            state = "valid" if a.invalid_at is None else f"invalid since {a.invalid_at:%Y-%m-%d %H:%M:%S}"
            edit = f" edit {a.edit_id}" if a.edit_id else ""
            print(f"({a.triple.subject}, {a.triple.relation}, {a.triple.object})  [{state}; by {a.who}{edit}]")
    return 0


def _pitfalls(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from eval.kg_conflicts import count_conflicts

    counts = count_conflicts(limit=args.limit, progress=lambda it, n: tqdm(it, total=n, desc="pitfalls", unit="case"))
    for count in counts:
        row = count.row()
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{row['set']:<10} {row['reading']:<7} found {row['found']:>5} / {row['cases']:<5} "
                f"({row['found_rate']:.1%})  false alarms {row['false_alarms']}  kinds {row['kinds']}"
            )
    return 0


def _retrieve(args: argparse.Namespace) -> int:
    with _open(args) as wm:
        evidence = wm.retriever.retrieve(args.question, scope=_scope(args), as_of=args.as_of, k=args.k)
    for e in evidence:
        if args.json:
            row = {"text": e.text, "score": e.score, "origin": e.origin, "citation": asdict(e.citation)}
            print(json.dumps(row, default=str))
        else:
            c = e.citation
            cite = ", ".join(x for x in (c.item_id, c.assertion_id, c.edit_id and f"edit {c.edit_id}") if x)
            print(f"{e.score:.3f} [{e.origin}] {e.text}  ({cite})")
    return 0
