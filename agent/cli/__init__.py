"""The ``factagent`` command line: argument parsing and error reporting; work lives in the subcommands.

Any :class:`~tools.errors.FactagentError` becomes ``error: <message>`` on stderr and exit status 2, never a
traceback (``-v`` shows debug logs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from tools.errors import FactagentError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from agent.cli import (
        _agent,
        _audit,
        _chat,
        _circuits,
        _concept,
        _demo,
        _detox,
        _edit,
        _evolve,
        _memory,
        _mend,
        _merge,
        _reader,
        _review,
        _serac,
        _serve,
        _world,
    )

    parser = argparse.ArgumentParser(prog="factagent", description="Keep what a language model says true.")
    parser.add_argument("--home", help="state directory (default: $FACTAGENT_HOME or ~/.factagent)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _demo.register(sub)
    _world.register(sub)
    _memory.register(sub)
    _edit.register(sub)
    _audit.register(sub)
    _agent.register(sub)
    _reader.register(sub)
    _chat.register(sub)
    _review.register(sub)
    _serve.register(sub)
    _merge.register(sub)
    _evolve.register(sub)
    _circuits.register(sub)
    _detox.register(sub)
    _concept.register(sub)
    _mend.register(sub)
    _serac.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    parser = _parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FactagentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
