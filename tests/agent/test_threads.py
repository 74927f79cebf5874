"""The thread policy: ``[runtime] threads`` sets torch's intra-op threads (1 by default; 0 leaves them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.config import open_home
from agent.wiring import apply_thread_policy
from tools.errors import ConfigError


def test_runtime_threads_set_torch_threads(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        apply_thread_policy(open_home(tmp_path / "default"))  # the default: one thread
        assert torch.get_num_threads() == 1
        (tmp_path / "keep").mkdir()
        (tmp_path / "keep" / "config.toml").write_text("[runtime]\nthreads = 0\n")
        torch.set_num_threads(2)
        apply_thread_policy(open_home(tmp_path / "keep"))  # 0: torch's own setting stays
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_negative_thread_count_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[runtime]\nthreads = -1\n")
    with pytest.raises(ConfigError):
        open_home(tmp_path)
