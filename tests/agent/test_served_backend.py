"""``[model] backend = "openai"``: settings, wiring, per-model thresholds, degradation without logprobs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent import Agent
from agent._answer import ModelView, Signals
from agent._policy import PolicyThresholds, decide
from agent.config import CONFIG_FILE, PolicySettings, Settings, dump_settings, load_settings, open_home
from agent.wiring import WorkingMemory, load_language_model, policy_thresholds
from eval.world import World
from tests.agent.tell.conftest import unknown_fact
from tools.errors import ConfigError
from tools.lm import Generation, HFLanguageModel, ServedLanguageModel

SERVED = '[model]\nbackend = "openai"\n[endpoint]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "gpt2-served"\n'


def _home(tmp_path: Path, text: str) -> Path:
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def test_a_served_model_needs_an_endpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_url and model"):
        load_settings(_home(tmp_path, '[model]\nbackend = "openai"\n') / CONFIG_FILE)


@pytest.mark.parametrize("mode", ["immediate", "consolidate"])
def test_parametric_tell_on_a_served_model_is_a_config_error(tmp_path: Path, mode: str) -> None:
    with pytest.raises(ConfigError, match="parametric"):
        load_settings(_home(tmp_path, SERVED + f'[tell]\nparametric = "{mode}"\n') / CONFIG_FILE)


def test_load_language_model_gives_the_served_model_without_contacting_it(tmp_path: Path) -> None:
    home = open_home(_home(tmp_path, SERVED + 'api_key_env = "NO_SUCH_KEY_VAR"\nmax_concurrency = 3\n'))
    lm = load_language_model(home)
    assert isinstance(lm, ServedLanguageModel)
    assert (lm.name, lm.api, lm.max_concurrency) == ("gpt2-served", "completions", 3)
    assert home.settings.model_name() == "gpt2-served"


def test_thresholds_are_kept_per_model_name(tmp_path: Path) -> None:
    mine = PolicySettings(model=0.42, calibrated_on="world dev, 9")
    settings = Settings.model_validate(
        {
            "model": {"backend": "openai"},
            "endpoint": {"base_url": "http://x/v1", "model": "m-1"},
            "policies": {"m-1": mine.model_dump(), "other": {"model": 0.9}},
        }
    )
    assert load_settings(_home(tmp_path, dump_settings(settings)) / CONFIG_FILE) == settings  # round trip
    home = open_home(tmp_path)
    assert policy_thresholds(home).model == 0.42
    local = Settings()  # the local model has no entry: [policy]
    assert local.model_name() == "gpt2-world" and local.model_policy() == local.policy


def test_edit_refuses_a_served_model(tmp_path: Path) -> None:
    from agent.cli._edit import _model_dir

    settings = open_home(_home(tmp_path, SERVED)).settings
    with pytest.raises(ConfigError, match="local weights"):
        _model_dir(argparse.Namespace(model=None), settings)
    assert _model_dir(argparse.Namespace(model=tmp_path), settings) == tmp_path  # an explicit local copy


class _NoLogprobs:
    """The reference model as a backend that gives answers only (no logprobs, no scoring)."""

    def __init__(self, lm: HFLanguageModel) -> None:
        self._lm, self.name, self.prompt_format = lm, "no-logprobs", lm.prompt_format

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        return [Generation(g.text) for g in self._lm.generate(prompts, max_new_tokens)]


def test_without_logprobs_the_agent_still_routes_and_says_why(
    wm: WorkingMemory, gpt2: HFLanguageModel, small_world: World
) -> None:
    agent = Agent(wm, _NoLogprobs(gpt2))
    fact = unknown_fact(small_world, "company_hq")
    kg = agent.ask(small_world.relation("company_hq").questions[0].replace("{}", fact.subject))
    assert (kg.action, kg.text) == ("kg", fact.object)  # KG and memory do not need the model's probabilities
    unknown = agent.ask("Who is the mother of Vuxvol Bredioskren?")
    assert unknown.signals is not None
    assert set(unknown.signals.unavailable) == {"first_token_prob", "familiarity", "pmi"}
    assert unknown.action in ("parametric", "abstain") and "no logprobs" in unknown.reason
    assert 0 < unknown.model_calls <= 5  # generations only: no scoring requests


def test_no_logprobs_confidence_is_agreement_alone() -> None:
    view = ModelView("p", "Paris", 1.0, 0.0)
    s = Signals("q", model=view, paraphrases=(view, view), agreement=1.0, unavailable=("first_token_prob",))
    d = decide(s, PolicyThresholds(model=0.6))
    assert (d.action, d.text) == ("parametric", "Paris") and "no logprobs" in d.reason
    lonely = Signals("q", model=view, unavailable=("first_token_prob",))  # no paraphrase to agree with
    assert lonely.model_confidence == 0.0 and decide(lonely, PolicyThresholds(model=0.04)).action == "abstain"


def test_model_calls_per_ask_are_bounded(agent: Agent) -> None:
    answer = agent.ask("Who is the mother of Vuxvol Bredioskren?")
    assert 1 <= answer.model_calls <= 8  # 5 generations + 3 scored rows at most


@pytest.mark.slow
def test_the_agent_over_a_real_server(wm: WorkingMemory, small_world: World) -> None:
    """``transformers serve`` on loopback (answers, no logprobs): the agent answers from KG and says why."""
    from bench.inference_servers import REFERENCE_MODEL, transformers_server
    from tools.lm import PromptFormat

    with transformers_server() as srv:
        lm = ServedLanguageModel(srv.base_url, srv.model, prompt_format=PromptFormat.load(REFERENCE_MODEL))
        agent = Agent(wm, lm)
        fact = unknown_fact(small_world, "company_ceo")
        kg = agent.ask(small_world.relation("company_ceo").questions[0].replace("{}", fact.subject))
        assert (kg.action, kg.text) == ("kg", fact.object)
        answer = agent.ask("Who is the mother of Vuxvol Bredioskren?")
    assert answer.signals is not None and "first_token_prob" in answer.signals.unavailable
    assert "no logprobs" in answer.reason and 1 <= answer.model_calls <= 5
    assert lm.usage.requests >= answer.model_calls


def test_calibration_fits_only_the_signals_a_backend_gives() -> None:
    from agent._calibrate import calibrate

    right, wrong = ModelView("p", "Paris", 1.0, 0.0), ModelView("p", "Rome", 1.0, 0.0)
    missing = ("first_token_prob", "familiarity", "pmi")
    signals = [
        Signals("a", model=right, paraphrases=(right,), agreement=1.0, unavailable=missing),
        Signals("b", model=wrong, paraphrases=(right,), agreement=0.0, unavailable=missing),
    ]
    result = calibrate(signals, [("Paris",), ("Lyon",)], lambda a, g: a in g, target=0.0)
    t = result.thresholds
    assert (t.familiarity, t.pmi, t.rag_prob) == (-100.0, -100.0, 0.0)  # pinned: nothing to fit them on
    assert result.coverage == 0.5 and result.hallucination_rate == 0.0  # agreement alone separates them


def test_the_audit_asks_the_served_model_in_every_builtin_setup(tmp_path: Path) -> None:
    from eval.audit import AuditConfig
    from eval.audit._stack import _load_lm

    home = open_home(_home(tmp_path, SERVED))
    lm = _load_lm(AuditConfig(setups=("standalone", "rag", "agent")), home)
    assert isinstance(lm, ServedLanguageModel) and lm.name == "gpt2-served"


def test_when_agreement_cannot_meet_the_target_the_model_stops_answering() -> None:
    from agent._calibrate import calibrate

    right, wrong = ModelView("p", "Paris", 1.0, 0.0), ModelView("p", "Rome", 1.0, 0.0)
    missing = ("first_token_prob", "familiarity", "pmi")
    # fully agreeing answers, half of them wrong: no confidence level in [0, 1] keeps hallucinations at 0
    signals = [Signals(str(i), model=v, paraphrases=(v,), agreement=1.0, unavailable=missing) for i, v in
               enumerate([right, wrong] * 5)]  # fmt: skip
    result = calibrate(signals, [("Paris",)] * 10, lambda a, g: a in g, target=0.0)
    assert result.feasible and result.thresholds.model > 1.0 and result.hallucination_rate == 0.0


def test_a_server_down_mid_session_is_a_typed_error_not_a_hang(wm: WorkingMemory) -> None:
    import time

    from tools.errors import EndpointUnreachableError

    lm = ServedLanguageModel("http://127.0.0.1:9/v1", "gpt2-served", timeout=1.0, max_retries=1, backoff=0.01)
    start = time.perf_counter()
    with pytest.raises(EndpointUnreachableError):
        Agent(wm, lm).ask("Who is the mother of Vuxvol Bredioskren?")
    assert time.perf_counter() - start < 3.0
