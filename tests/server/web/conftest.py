"""Fixtures of the web app tests: one server on loopback (bob is an untrusted user, so his contradicting
tells are held for review) and signed-in HTTP clients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import CONFIG, Served, key

WEB_CONFIG = CONFIG.replace("[tell]\n", '[tell]\nroles = { bob = "untrusted" }\n', 1)


@pytest.fixture(scope="session")
def web(
    serve: Callable[..., AbstractContextManager[Served]],
    tmp_path_factory: pytest.TempPathFactory,
    loaded_home: Path,
) -> Iterator[Served]:
    """One server for the web tests (started once: each start loads a home), bob untrusted. Tests that
    change facts use different subjects."""
    root = tmp_path_factory.mktemp("web") / "home"
    shutil.copytree(loaded_home, root)
    (root / "config.toml").write_text(WEB_CONFIG, encoding="utf-8")
    with serve(root) as served:
        yield served


def form_token(html: str, name: str = "csrf") -> str:
    """The first hidden ``name`` token of a page."""
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} token on the page"
    return found.group(1)


def sign_in(url: str, user: str) -> httpx.Client:
    """An HTTP client signed in to the web app as ``user`` (a browser without JS, in effect)."""
    client = httpx.Client(base_url=url, timeout=120)
    pre = form_token(client.get("/ui/signin").text, "pre")
    r = client.post("/ui/signin", data={"key": key(user), "pre": pre})
    assert r.status_code == 303 and r.headers["location"] == "/ui/chat", r.text
    return client
