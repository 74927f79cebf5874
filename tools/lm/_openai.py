"""OpenAI-compatible chat completions over httpx (vLLM, llama.cpp server, Ollama, hosted APIs).

Each prompt is sent as one user message with ``temperature=0``. Transient failures (connection errors,
timeouts, 429 and 5xx) are retried with exponential backoff (``Retry-After`` is honoured when shorter than
the cap); everything else maps to a typed :class:`~tools.errors.BackendError` at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import httpx

from tools.errors import (
    EndpointStatusError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    MalformedResponseError,
)
from tools.lm._format import PromptFormat
from tools.lm._protocol import Generation

logger = logging.getLogger(__name__)
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server expects.
        api_key: sent as a bearer token when given.
        timeout: seconds for each request (connect, read, write).
        max_retries: extra attempts after a transient failure.
        backoff: first retry delay in seconds; doubles each attempt, capped at ``max_backoff``.
        logprobs: ask for the first token's probabilities (servers that do not support it are asked once,
            then the request is repeated without).

    Example:
        >>> lm = OpenAIChatModel("http://127.0.0.1:8000/v1", model="llama3")  # doctest: +SKIP
        >>> lm.generate(["Who wrote Hamlet? Answer with a name."])[0].text  # doctest: +SKIP
    """

    one_request_per_prompt = True  # sequential requests: see ServedLanguageModel

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        logprobs: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, headers=headers, transport=transport
        )
        self.name = model
        self.prompt_format = PromptFormat(
            question_template="Answer with the short answer only, or 'I don't know'.\nQuestion: {question}\nAnswer:",
            context_template=(
                "Use the context to answer with the short answer only.\n"
                "Context: {context}\nQuestion: {question}\nAnswer:"
            ),
        )
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.logprobs = logprobs

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        """One completion per prompt (sequential requests), cut at the first newline."""
        return [self._complete(p, max_new_tokens) for p in prompts]

    def _complete(self, prompt: str, max_tokens: int) -> Generation:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=2)
        data = self._post("chat/completions", body)
        return _parse_generation(data)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            retry_after: str | None = None
            try:
                response = self._client.post(path, json=body)
            except httpx.TimeoutException as exc:
                if attempt >= self.max_retries:
                    raise EndpointTimeoutError(
                        f"{self._client.base_url}{path}: no answer after {attempt + 1} attempts"
                    ) from exc
                reason = f"timeout ({exc})"
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise EndpointUnreachableError(f"cannot reach {self._client.base_url}: {exc}") from exc
                reason = f"transport error ({exc})"
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except json.JSONDecodeError as exc:
                        raise MalformedResponseError(f"{path}: response is not JSON ({response.text[:80]!r})") from exc
                if status == 400 and body.pop("logprobs", None) is not None:
                    # some servers reject logprobs: ask once more without them, and stop asking
                    body.pop("top_logprobs", None)
                    self.logprobs = False
                    continue
                if status not in _RETRY_STATUS or attempt >= self.max_retries:
                    raise EndpointStatusError(f"{path}: HTTP {status}: {_error_message(response)}", status)
                reason = f"HTTP {status}"
                retry_after = response.headers.get("retry-after")
            delay = self._delay(attempt, retry_after)
            logger.warning("retrying %s in %.2fs after %s", path, delay, reason)
            time.sleep(delay)
            attempt += 1

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: keep the exponential delay
                delay = min(self.max_backoff, max(0.0, float(retry_after)))
        return delay


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("error", {}).get("message") or data)[:200]
    except (json.JSONDecodeError, AttributeError):
        return response.text[:200]


def _parse_generation(data: Any) -> Generation:
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedResponseError(f"not a chat completion: {str(data)[:120]}") from exc
    prob = margin = None
    content = ((choice.get("logprobs") or {}).get("content") or []) if isinstance(choice, dict) else []
    if content:
        tops = sorted((t.get("logprob", -math.inf) for t in content[0].get("top_logprobs", [])), reverse=True)
        if tops:
            prob = math.exp(tops[0])
            margin = prob - (math.exp(tops[1]) if len(tops) > 1 else 0.0)
    return Generation(text=text.strip().split("\n", 1)[0].strip(), first_token_prob=prob, margin=margin)
