"""Argument types shared by the CLI's commands."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from typing import Any

from tools.errors import InvalidInputError

__all__ = ["key_values", "method_overrides", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1, or a clear usage error."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def method_overrides(
    pairs: Iterable[tuple[str, Any]], methods: Sequence[str], option: str = "--method"
) -> dict[str, dict[str, Any]]:
    """``--hparam METHOD:KEY=VALUE`` pairs (already split at ``=``) grouped per method: ``{method: {key: value}}``.

    Raises:
        InvalidInputError: a key without ``METHOD:`` or naming a method that ``option`` did not choose.
    """
    overrides: dict[str, dict[str, Any]] = {}
    for key, value in pairs:
        method, sep, name = key.partition(":")
        if not sep or method not in methods:
            raise InvalidInputError(f"--hparam: expected METHOD:KEY=VALUE with a method of {option}, got {key!r}")
        overrides.setdefault(method, {})[name] = value
    return overrides


def key_values(items: Iterable[str]) -> dict[str, Any]:
    """``--hparam KEY=VALUE`` overrides; a value that is not JSON is kept as a string.

    Raises:
        InvalidInputError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--hparam wants KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
