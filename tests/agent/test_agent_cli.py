"""``factagent ask`` and ``factagent calibrate`` through the CLI entry point, on a copied world-slice home."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_settings
from eval.world import World
from tests.agent.tell.conftest import unknown_fact


@pytest.fixture
def home(tmp_path: Path, loaded_home: Path) -> Path:
    root = tmp_path / "home"
    shutil.copytree(loaded_home, root)
    return root


def test_ask_prints_the_answer_with_its_action(
    home: Path, small_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    fact = unknown_fact(small_world, "company_hq")
    question = small_world.relation("company_hq").questions[0].replace("{}", fact.subject)
    assert main(["--home", str(home), "ask", question, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["action"] == "kg" and row["text"] == fact.object and row["citations"]


def test_calibrate_saves_thresholds_fitted_on_dev_questions(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home), "calibrate", "--limit", "24", "--target", "0.1", "--paraphrases", "6"]) == 0
    assert "calibrated on 24 dev questions" in capsys.readouterr().out
    policy = load_settings(home / "config.toml").policy
    assert policy.calibrated_on == "world dev, 24 questions" and policy.target_hallucination == 0.1
    assert policy.paraphrases == 6  # the number the agreement threshold was fitted with, saved with it


def test_bad_input_is_an_error_line_not_a_traceback(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home), "ask", "   "]) == 2
    assert capsys.readouterr().err.startswith("error: a question must be")  # checked before loading anything
    assert main(["--home", str(home), "calibrate", "--target", "2"]) == 2
    assert main(["--home", str(home), "calibrate", "--unanswerable-confidence", "1"]) == 2
    assert "--unanswerable-confidence must be in [0, 1)" in capsys.readouterr().err
    assert main(["--home", str(home), "agent-bench", "--max-unanswerable", "-0.5"]) == 2
    assert "--max-unanswerable must be a rate" in capsys.readouterr().err
    assert main(["--home", str(home), "calibrate", "--paraphrases", "13"]) == 2
    assert "--paraphrases must be in [0, 12]" in capsys.readouterr().err


def test_calibrate_on_the_chinese_dev_questions_records_them(home: Path, bundled_world: World) -> None:
    """``calibrate --dataset world-zh:dev`` fits on the Chinese slice's dev questions (the memory is the
    home's here: loading the whole world is the CLI's step) and says so in ``calibrated_on``."""
    from agent import Agent
    from agent.cli._agent import calibrate_agent
    from agent.config import open_home
    from tools.errors import InvalidInputError

    opened = open_home(home)
    agent = Agent.open(opened, with_tell=False)
    try:
        with pytest.raises(InvalidInputError, match="dataset must be one of"):
            calibrate_agent(agent, bundled_world, opened, target=0.1, limit=12, seed=0, dataset="world-zh:test")
        result = calibrate_agent(agent, bundled_world, opened, target=0.1, limit=12, seed=0, dataset="world-zh:dev")
    finally:
        agent.close()
    assert result.n == 12
    policy = load_settings(home / "config.toml").policy
    assert policy.calibrated_on == "world-zh dev, 12 questions"
    zh_dev = {q.text for q in bundled_world.slice_questions if q.id.startswith("zq") and q.split == "dev"}
    assert len(zh_dev) > 12
