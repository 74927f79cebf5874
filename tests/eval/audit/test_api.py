"""The package's public surface: a sorted ``__all__``, and importing it stays light (no torch, no ray)."""

from __future__ import annotations

import subprocess
import sys

import eval.audit
from tests.conftest import REPO


def test_all_is_sorted_and_importable() -> None:
    assert eval.audit.__all__ == sorted(eval.audit.__all__)
    assert all(getattr(eval.audit, name) is not None for name in eval.audit.__all__)


def test_import_is_light() -> None:
    code = "import sys, eval.audit; print(sorted({'torch', 'ray', 'transformers', 'faiss'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
