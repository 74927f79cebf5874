"""``factagent quarantine list|accept|reject``: review statements the trust policy held, from a shell.

Accepting applies the statement as its author's edit in its namespace; only a user who is ``admin`` in
``[tell] roles`` may accept or reject (the pipeline checks). Listing shows who told what, when, in which
namespace, and why it was held (the trusted fact it contradicts).
"""

from __future__ import annotations

import argparse
import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.tell import TellPipeline

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``quarantine`` command group."""
    group = sub.add_parser("quarantine", help="statements held for review: list, accept, reject (admins)")
    cmds = group.add_subparsers(dest="quarantine_command", required=True, metavar="SUBCOMMAND")
    listing = cmds.add_parser("list", help="held statements, oldest first")
    listing.add_argument("--status", choices=["pending", "approved", "rejected", "all"], default="pending")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)
    for name, helptext in (("accept", "apply it as its author's edit"), ("reject", "drop it; nothing changes")):
        cmd = cmds.add_parser(name, help=helptext)
        cmd.add_argument("item_id", help="the held statement's id (q-...)")
        cmd.add_argument("--user", required=True, help="who reviews: an admin in [tell] roles")
        cmd.set_defaults(func=_review, accept=name == "accept")


def _pipeline(args: argparse.Namespace) -> AbstractContextManager[TellPipeline]:
    from agent.config import open_home
    from agent.wiring import open_tell_stack

    return open_tell_stack(open_home(args.home))


def _row(q: Any) -> dict[str, Any]:
    triples = [[t.subject, t.relation, t.object] for t in q.triples]
    return {
        "id": q.id, "status": q.status, "user": q.user, "created_at": q.created_at.isoformat(),
        "namespace": q.namespace, "text": q.text, "triples": triples, "reason": q.reason,
        "reviewed_by": q.reviewed_by, "edit_id": q.edit_id,
    }  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    with _pipeline(args) as pipeline:
        items = pipeline.quarantine(None if args.status == "all" else args.status)
    for q in items:
        if args.json:
            print(json.dumps(_row(q), ensure_ascii=False))
        else:
            when = q.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{q.id}  {q.status:<8} {when}  {q.user} in {q.namespace}: {q.text}\n    held: {q.reason}")
    if not items and not args.json:
        print(f"no {args.status if args.status != 'all' else ''} held statements".replace("  ", " "))
    return 0


def _review(args: argparse.Namespace) -> int:
    with _pipeline(args) as pipeline:
        result = pipeline.review(args.item_id, args.accept, args.user)
    if result is None:
        print(f"rejected {args.item_id}: nothing was changed")
    else:
        print(f"accepted {args.item_id}: {result.message}")
    return 0
