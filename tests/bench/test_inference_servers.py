"""The served-model backend against real third-party servers on loopback (``bench/inference_servers.py``).

``transformers serve`` always runs (it ships with the pinned transformers): answers without logprobs, the
degraded path. llama.cpp's server runs where ``.ci/llama_server.sh`` installed it: logprobs and prompt
log-probabilities (by teacher forcing), compared with the in-process model on the same weights.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bench.inference_servers import (
    REFERENCE_MODEL,
    RunningServer,
    cached_gguf,
    llama_available,
    llama_server,
    transformers_server,
)
from tools.errors import EndpointUnreachableError, UnsupportedSignalError
from tools.lm import HFLanguageModel, PromptFormat, ServedLanguageModel

pytestmark = pytest.mark.slow
PROMPTS = ["Q: Who is the CEO of Nokia?\nA:", "Q: Where is Nokia headquartered?\nA:", "The capital of France is"]


@pytest.fixture(scope="module")
def local() -> HFLanguageModel:
    return HFLanguageModel.load(REFERENCE_MODEL, device="cpu")


@pytest.fixture(scope="module")
def hf_served() -> Iterator[RunningServer]:
    with transformers_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def llama() -> Iterator[RunningServer]:
    gguf = cached_gguf()
    if not llama_available() or gguf is None:
        pytest.skip("llama-cpp-python is not installed here (bash .ci/llama_server.sh installs it)")
    with llama_server(gguf) as srv:
        yield srv


def _lm(srv: RunningServer, **kw: object) -> ServedLanguageModel:
    return ServedLanguageModel(srv.base_url, srv.model, prompt_format=PromptFormat.load(REFERENCE_MODEL), **kw)  # type: ignore[arg-type]


def test_transformers_serve_answers_as_in_process_without_logprobs(
    hf_served: RunningServer, local: HFLanguageModel
) -> None:
    lm = _lm(hf_served)
    served = lm.generate(PROMPTS, max_new_tokens=12)
    assert [g.text for g in served] == [g.text for g in local.generate(PROMPTS, max_new_tokens=12)]
    assert all(g.first_token_prob is None for g in served)  # it ignores logprobs ...
    assert lm.capabilities.logprobs is False and "first_token_prob" not in lm.capabilities.signals()
    with pytest.raises(UnsupportedSignalError):  # ... and echo
        lm.score(["Q: Who is"], [" Nokia"])
    assert lm.usage.requests >= len(PROMPTS)


def test_a_server_that_goes_away_is_a_typed_error_not_a_hang(local: HFLanguageModel) -> None:
    with transformers_server() as srv:
        lm = _lm(srv, timeout=5.0, max_retries=1, backoff=0.05)
        assert lm.generate(PROMPTS[:1])[0].text
    start = time.perf_counter()
    with pytest.raises(EndpointUnreachableError):
        lm.generate(PROMPTS[:1])
    assert time.perf_counter() - start < 5.0


def test_llama_cpp_gives_the_in_process_answers_and_probabilities(llama: RunningServer, local: HFLanguageModel) -> None:
    lm = _lm(llama)
    served = lm.generate(PROMPTS, max_new_tokens=12)
    ours = local.generate(PROMPTS, max_new_tokens=12)
    assert [g.text for g in served] == [g.text for g in ours]
    for a, b in zip(served, ours, strict=True):
        assert a.first_token_prob == pytest.approx(b.first_token_prob, abs=0.02)
    assert lm.capabilities.logprobs is True


def test_llama_cpp_prompt_scores_agree_with_in_process(llama: RunningServer, local: HFLanguageModel) -> None:
    """Prompt log-probabilities from llama.cpp match the in-process model's teacher-forced ones.

    llama-cpp-python 0.3.36 echoes each prompt token's log-probability off by one (measured: -11.6 for a
    token its completion gives -0.02), so the backend scores by teacher forcing there (``logit_bias``).
    """
    lm = _lm(llama)
    prompts, conts = ["Q: Who is the CEO of", "The capital of France is"], [" Nokia?", " Paris"]
    served = lm.score(prompts, conts)
    assert lm.capabilities.scoring in ("echo", "forced") and "familiarity" in lm.capabilities.signals()
    for a, b in zip(served, local.score(prompts, conts), strict=True):
        assert a.n_tokens == b.n_tokens and a.mean_logprob == pytest.approx(b.mean_logprob, abs=0.05)
