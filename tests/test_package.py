"""Package hygiene: public API lists, the dependency direction (the floors), no print in library code, light imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from bench.import_graph import FLOORS, Unit, edges, violations
from tests.conftest import REPO

PACKAGES = [
    "agent",
    "memory",
    "tools",
    "tools.base",
    "tools.lean",
    "tools.lm",
    "tools.edit",
    "kg",
    "eval",
    "eval.world",
]
LOWER = ["kg", "memory", "tools"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    assert exported == sorted(exported)
    for attr in exported:
        assert getattr(module, attr) is not None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LOWER)
def test_lower_packages_never_import_agent_or_eval(package: str) -> None:
    for path in (REPO / package).rglob("*.py"):
        assert not _imports(path) & {"agent", "eval"}, path


def test_imports_follow_the_floors() -> None:
    """base < tools | memory | kg < agent core < eval < entry points; no private module of another package."""
    found = violations(edges(REPO, ["agent", "memory", "tools", "kg", "eval"]))
    listed = [f"{v.kind}: {v.edge.path}:{v.edge.line} imports {v.edge.target}" for v in found]
    assert listed == []


def test_the_floors_name_the_entry_points_and_the_base() -> None:
    units = {u.name: u for u in FLOORS}
    assert units["entry"].floor > units["eval"].floor > units["agent"].floor > units["kg"].floor
    assert units["kg"].floor == units["memory"].floor == units["tools"].floor > units["base"].floor
    assert {"agent.cli", "agent.server", "agent.client"} <= set(units["entry"].prefixes)


def _fake_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_floor_checker_finds_upward_sideways_and_private_imports(tmp_path: Path) -> None:
    _fake_tree(
        tmp_path,
        {
            "low/__init__.py": "from low._impl import thing\n",
            "low/_impl.py": "import os\nthing = 1\n",
            "low/base.py": "def f():\n    from top import x  # upward, even inside a function\n",
            "peer/__init__.py": "from low import thing\nfrom other import y  # sideways\n",
            "other/__init__.py": "y = 2\n",
            "top/__init__.py": "from low import thing\nfrom low._impl import thing as t  # private\n",
            "top/cli.py": "from top._core import z  # private, but the same package: allowed\n"
            "from low import _impl  # the private module by name\n",
            "top/_core.py": "from . import cli  # relative: inside the package\n",
        },
    )
    units = (
        Unit(name="low", floor=0, prefixes=("low",)),
        Unit(name="peer", floor=1, prefixes=("peer",)),
        Unit(name="other", floor=1, prefixes=("other",)),
        Unit(name="top", floor=2, prefixes=("top",)),
    )
    found = violations(edges(tmp_path, ["low", "peer", "other", "top"]), units)
    got = sorted((v.kind, v.edge.path, v.edge.target) for v in found)
    assert got == [
        ("private", "top/__init__.py", "low._impl"),
        ("private", "top/cli.py", "low._impl"),
        ("sideways", "peer/__init__.py", "other"),
        ("upward", "low/base.py", "top"),
    ]


def test_no_print_in_library_code() -> None:
    for package in ["agent", "memory", "tools", "kg", "eval"]:
        for path in (REPO / package).rglob("*.py"):
            if "cli" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
            assert not calls, path


def test_light_imports() -> None:
    code = (
        "import sys, memory, kg, tools, tools.lm, tools.errors; "
        "print([m for m in ('torch', 'faiss', 'sentence_transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_typed_markers() -> None:
    for package in ["agent", "memory", "tools", "kg", "eval"]:
        assert (REPO / package / "py.typed").is_file()


def test_readme_has_exactly_two_setup_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [line for line in setup.splitlines() if line.startswith("make ")]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()
