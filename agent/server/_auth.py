"""API keys: who is calling, with which role, and which namespaces they may read and write.

The keys file (TOML or JSON, ``[server] keys_file`` or ``<home>/server/keys.toml``) lists keys::

    [[keys]]
    key = "fa-alice-secret"            # or key_sha256 = "<hex digest>" to keep only a hash on disk
    user = "alice"
    role = "editor"                    # reader | editor | admin
    namespaces = ["alice"]             # her own: read and write; the first is her default
    shared = ["world"]                 # granted shared namespaces, read only
    shared_write = ["team"]            # granted shared namespaces she may also write
    requests_per_minute = 600          # optional; overrides [server] requests_per_minute

A key is compared by its SHA-256 digest in constant time. A namespace the key was not granted is refused
with the same answer whether or not it exists (:meth:`Principal.check`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.errors import ConfigError, PermissionDeniedError

__all__ = ["ApiKey", "KeyRing", "Principal", "ServerRole", "hash_key"]

logger = logging.getLogger(__name__)

ServerRole = Literal["reader", "editor", "admin"]
_NS = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
NO_ACCESS = "no such namespace, or this key may not use it"


def hash_key(key: str) -> str:
    """The hex SHA-256 digest a keys file may store instead of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKey(BaseModel):
    """One entry of the keys file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = Field(default=None, min_length=8)
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    user: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
    role: ServerRole = "reader"
    namespaces: tuple[str, ...] = Field(min_length=1)
    shared: tuple[str, ...] = ()
    shared_write: tuple[str, ...] = ()
    requests_per_minute: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKey:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key and key_sha256")
        for ns in (*self.namespaces, *self.shared, *self.shared_write):
            if not re.match(_NS, ns):
                raise ValueError(f"bad namespace {ns!r}")
        return self

    @property
    def digest(self) -> str:
        return self.key_sha256 or hash_key(self.key or "")


class _KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[ApiKey] = Field(default_factory=list)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key's user, role and namespaces.

    ``writable`` are the namespaces it may change (its own and ``shared_write``; none for readers);
    ``readable`` adds the read-only shared ones.
    """

    user: str
    role: ServerRole
    namespaces: tuple[str, ...]
    shared: tuple[str, ...] = ()
    shared_write: tuple[str, ...] = ()
    key_id: str = ""  # a short digest prefix, for rate limits and logs (never the key)
    requests_per_minute: int | None = None

    @property
    def readable(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.namespaces, *self.shared_write, *self.shared)))

    @property
    def writable(self) -> tuple[str, ...]:
        if self.role == "reader":
            return ()
        return tuple(dict.fromkeys((*self.namespaces, *self.shared_write)))

    @property
    def can_edit(self) -> bool:
        return self.role != "reader"

    def check(self, namespace: str | None, *, write: bool = False) -> str:
        """The namespace to use (the key's default for ``None``).

        Raises:
            PermissionDeniedError: the key may not read (or write) it — the same message whether or not it exists.
        """
        ns = namespace or self.namespaces[0]
        if ns not in (self.writable if write else self.readable):
            if write and ns in self.readable:
                raise PermissionDeniedError(f"this key ({self.role}) may not change namespace {ns!r}")
            raise PermissionDeniedError(NO_ACCESS)
        return ns

    def search_namespaces(self, namespace: str | None) -> list[str]:
        """What a question in ``namespace`` searches: that namespace and the key's shared ones."""
        ns = self.check(namespace)
        return list(dict.fromkeys([ns, *self.shared_write, *self.shared]))


class KeyRing:
    """API keys by digest; :meth:`authenticate` turns a presented key into a :class:`Principal`."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_digest: dict[str, ApiKey] = {}
        for k in keys:
            if k.digest in self._by_digest:
                raise ConfigError(
                    f"the same API key is listed twice (users {self._by_digest[k.digest].user}, {k.user})"
                )
            self._by_digest[k.digest] = k

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read a keys file (``.json`` is JSON, anything else TOML); a missing file gives no keys.

        Raises:
            ConfigError: unreadable or invalid (the message names the entry).
        """
        if not path.exists():
            logger.warning("no API keys file at %s: every request will be refused", path)
            return cls([])
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
            return cls(_KeysFile.model_validate(data).keys)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the API keys ({exc})") from exc
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: {problems}") from exc

    @property
    def users(self) -> dict[str, ServerRole]:
        """User name -> role, over all keys (the highest role when a user has several keys)."""
        rank = {"reader": 0, "editor": 1, "admin": 2}
        out: dict[str, ServerRole] = {}
        for k in self._by_digest.values():
            if k.user not in out or rank[k.role] > rank[out[k.user]]:
                out[k.user] = k.role
        return out

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of a presented key, or ``None`` for a missing or unknown key."""
        if not presented:
            return None
        digest = hash_key(presented)
        found = None
        for known, entry in self._by_digest.items():  # compare every digest: constant time in the key
            if hmac.compare_digest(known, digest):
                found = entry
        if found is None:
            return None
        return Principal(
            found.user, found.role, found.namespaces, found.shared, found.shared_write, digest[:12],
            found.requests_per_minute,
        )  # fmt: skip
