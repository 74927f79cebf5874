"""Package hygiene: public API lists, the dependency direction, no print in library code, light imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ["agent", "memory", "tools", "tools.lm", "kg", "eval", "eval.world"]
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
