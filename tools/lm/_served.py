"""A served model behind an OpenAI-compatible API, asked concurrently (llama.cpp server, vLLM, Ollama, hosted).

Two wire protocols:

- ``completions`` (``/completions``): the raw prompt, so a base model served remotely is prompted exactly as
  in-process (its ``factagent.json`` prompt format); ``logprobs=k`` gives the first token's probability and
  margin, and ``echo`` with ``logprobs`` gives prompt log-probabilities, which back :meth:`score`
  (familiarity, pmi) where the server offers them; where its echo is wrong but it takes ``logit_bias`` and
  has a tokenizer endpoint (llama.cpp's servers), they are obtained by teacher forcing (``_forced.py``).
- ``chat`` (``/chat/completions``): one user message; ``logprobs`` / ``top_logprobs`` where offered; no
  prompt log-probabilities (:meth:`score` raises :class:`UnsupportedSignalError`).

What the server gives is learned from its answers and kept in :attr:`ServedLanguageModel.capabilities`: a
server that rejects ``logprobs`` (HTTP 400/422) or answers without them is asked without them from then on;
one whose echo carries no prompt log-probabilities, or whose echoed log-probabilities disagree with its own
completions (checked once, on the first :meth:`score`), is scored by teacher forcing when a forced token's
log-probability agrees with the completion's (checked once too), and otherwise never asked to score again.
A continuation that is exactly the text of the first tokens the model generated after the same prompt is
scored from that completion's own token log-probabilities, without a request (``GenerationMemo``).

Each call of :meth:`generate` / :meth:`score` sends its requests at once, at most ``max_concurrency`` in
flight (asyncio + httpx): one request per prompt (per row for :meth:`score`), so the cost of a call is known
before it starts. Every request has a hard deadline of ``timeout`` seconds, a slow or trickling stream
included; transient failures (connection errors, timeouts, 408/409/429/5xx) are retried with exponential
backoff (``Retry-After`` honoured up to the cap), then raise a typed :class:`~tools.errors.BackendError`.
:attr:`ServedLanguageModel.usage` counts requests, retries and seconds spent, for per-ask reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx

from tools.errors import (
    EndpointStatusError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    InvalidInputError,
    MalformedResponseError,
    UnsupportedSignalError,
)
from tools.lm._forced import GenerationMemo, TokenCache, forced_score
from tools.lm._format import PromptFormat
from tools.lm._protocol import Generation, Score

__all__ = ["Capabilities", "ServedLanguageModel", "Usage"]

logger = logging.getLogger(__name__)
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_T = TypeVar("_T")
Api = Literal["completions", "chat"]


@dataclass
class Capabilities:
    """What the server has shown it gives (``None``: not asked yet)."""

    logprobs: bool | None = None  # first-token probability and margin with each completion
    prompt_logprobs: bool | None = None  # log-probabilities of the prompt's tokens, for scoring
    scoring: Literal["echo", "forced"] | None = None  # how they are obtained (see the module docstring)

    def signals(self) -> tuple[str, ...]:
        """The model signals this backend gives, as named in ``Signals.provided``."""
        out = ["answer", "agreement"]  # any backend answers, so paraphrase agreement is always measurable
        if self.logprobs is not False:
            out.append("first_token_prob")
        if self.prompt_logprobs:
            out += ["familiarity", "pmi"]
        return tuple(out)


RequestKind = Literal["generation", "forced", "tokenize", "echo"]


@dataclass
class Usage:
    """Requests sent (retries included), retries, and wall seconds inside :meth:`generate` / :meth:`score`;
    :attr:`by_kind` splits the requests: ``generation`` (answers, and the scoring probe's one-token
    completion), ``forced`` (one teacher-forced token), ``tokenize`` (the server's tokenizer), ``echo``
    (prompt log-probabilities by echo)."""

    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, requests: int = 0, retries: int = 0, seconds: float = 0.0, kind: RequestKind | None = None) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.seconds += seconds
            if kind is not None and requests:
                self.by_kind[kind] = self.by_kind.get(kind, 0) + requests

    def snapshot(self) -> tuple[int, int, float]:
        """``(requests, retries, seconds)`` so far."""
        with self._lock:
            return self.requests, self.retries, self.seconds

    def kinds(self) -> dict[str, int]:
        """Requests so far per kind (a copy)."""
        with self._lock:
            return dict(self.by_kind)


class ServedLanguageModel:
    """A language model behind an OpenAI-compatible endpoint (see the module docstring).

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8080/v1``.
        model: the model name the server expects (also this model's name for calibrated thresholds).
        api: ``completions`` (raw prompts; prompt log-probabilities where offered) or ``chat``.
        api_key: sent as a bearer token when given.
        prompt_format: how the model wants its prompts (the served model's ``factagent.json``).
        timeout: hard deadline in seconds for each request, the whole body included.
        max_retries: extra attempts after a transient failure.
        max_concurrency: requests in flight at once per call.
        backoff, max_backoff: first retry delay (doubling each attempt) and its cap, in seconds.
        transport: an httpx transport (tests).

    Example:
        >>> lm = ServedLanguageModel("http://127.0.0.1:8080/v1", "gpt2-world")  # doctest: +SKIP
        >>> lm.generate([lm.prompt_format.question("Who is the CEO of Nokia?")])[0].text  # doctest: +SKIP
    """

    # each prompt is a request the server answers on its own (one at a time, for llama-cpp-python): what a
    # call costs grows with its prompts, not its batches, so the agent asks for fewer, in stages
    one_request_per_prompt = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api: Api = "completions",
        api_key: str | None = None,
        prompt_format: PromptFormat | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_concurrency: int = 4,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if api not in ("completions", "chat"):
            raise InvalidInputError(f"api must be 'completions' or 'chat', got {api!r}")
        if max_concurrency < 1 or timeout <= 0:
            raise InvalidInputError("max_concurrency must be >= 1 and timeout > 0")
        self.base_url = base_url.rstrip("/") + "/"
        # the server's own endpoints (tokenizer) live beside the OpenAI API: ".../v1/" -> ".../"
        self._root = self.base_url[: -len("v1/")] if self.base_url.endswith("/v1/") else self.base_url
        self.name = model
        self.api: Api = api
        self.prompt_format = prompt_format or PromptFormat()
        self.timeout, self.max_retries = timeout, max_retries
        self.max_concurrency = max_concurrency
        self.backoff, self.max_backoff = backoff, max_backoff
        self.capabilities = Capabilities(prompt_logprobs=False if api == "chat" else None)
        self.usage = Usage()
        self._generated = GenerationMemo()  # its own completions' token log-probabilities, for score()
        self._tokens = TokenCache()  # the server's token ids of recent texts, for teacher forcing
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport
        self._tls: ssl.SSLContext | None = None  # built on first use, then shared by every call's client
        self._tls_lock = threading.Lock()

    # -- the LanguageModel seam ---------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        """Greedy completions, one per prompt, cut at the first newline (requests concurrent, bounded).

        Raises:
            BackendError: a request failed after its retries (typed: unreachable, timeout, status, malformed).
        """
        if not prompts:
            return []
        return self._run(
            lambda client: self._gather(client, [self._one_generation(client, p, max_new_tokens) for p in prompts])
        )

    def generate_texts(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        """As :meth:`generate`, the same greedy texts, without asking for log-probabilities
        (``first_token_prob`` ``None``): where only the answer is read (paraphrase agreement), as llama.cpp's
        Python server ranks the whole vocabulary for every generated token when asked for them.

        Raises:
            BackendError: as :meth:`generate`.
        """
        if not prompts:
            return []
        return self._run(
            lambda client: self._gather(
                client, [self._one_generation(client, p, max_new_tokens, logprobs=False) for p in prompts]
            )
        )

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Score]:
        """Log-probability of each continuation after its prompt, from the server's prompt log-probabilities.

        Raises:
            UnsupportedSignalError: the server gives no prompt log-probabilities (chat API, or echo refused).
            InvalidInputError: mismatched lengths.
            BackendError: as :meth:`generate`.
        """
        if len(prompts) != len(continuations):
            raise InvalidInputError("prompts and continuations must have the same length")
        if self.capabilities.prompt_logprobs is False:
            raise UnsupportedSignalError(f"{self.name}: the server gives no prompt log-probabilities")
        if not prompts:
            return []
        if self.capabilities.scoring is None:
            self.capabilities.scoring = self._run(lambda c: self._probe_scoring(c, prompts[0]))
            if self.capabilities.scoring is None:
                self.capabilities.prompt_logprobs = False
                raise UnsupportedSignalError(f"{self.name}: the server's prompt log-probabilities are not usable")
        one = self._one_score if self.capabilities.scoring == "echo" else self._one_forced
        rows = list(zip(prompts, continuations, strict=True))
        known = [self._generated.score(p, c) for p, c in rows]  # the model's own answers: no request
        todo = [(i, p, c) for i, ((p, c), k) in enumerate(zip(rows, known, strict=True)) if k is None]
        asked = self._run(lambda client: self._gather(client, [one(client, p, c) for _, p, c in todo])) if todo else []
        scores = list(known)
        for (i, _, _), sc in zip(todo, asked, strict=True):
            scores[i] = sc
        if any(s is None for s in scores):
            self.capabilities.prompt_logprobs = False
            raise UnsupportedSignalError(f"{self.name}: the server gives no prompt log-probabilities")
        self.capabilities.prompt_logprobs = True
        return [s for s in scores if s is not None]

    # -- the event loop at the network edge ---------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        """httpx's default verifying TLS context (certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``),
        made once: an ``AsyncClient`` left to make its own reads the CA bundle each time (~40 ms on this
        machine's loaded cores), as much as a whole request to a local server."""
        with self._tls_lock:
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            return self._tls

    def _run(self, work: Callable[[httpx.AsyncClient], Awaitable[_T]]) -> _T:
        """Run ``work`` with a fresh client on an event loop (a worker thread's when one is running here)."""
        tls = self._tls_context()

        async def main() -> _T:
            limits = httpx.Limits(max_connections=self.max_concurrency)
            async with httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self.timeout,
                limits=limits,
                transport=self._transport,
                verify=tls,
            ) as client:
                return await work(client)

        start = time.perf_counter()
        try:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # the usual case: synchronous core, no loop in this thread
                return asyncio.run(main())
            with ThreadPoolExecutor(max_workers=1) as pool:  # called from async code: keep its loop free
                return pool.submit(asyncio.run, main()).result()
        finally:
            self.usage.add(seconds=time.perf_counter() - start)

    async def _gather(self, client: httpx.AsyncClient, jobs: Sequence[Awaitable[_T]]) -> list[_T]:
        gate = asyncio.Semaphore(self.max_concurrency)

        async def bounded(job: Awaitable[_T]) -> _T:
            async with gate:
                return await job

        tasks = [asyncio.ensure_future(bounded(j)) for j in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # one failure cancels the rest: nothing keeps running past the call
            for t in tasks:
                t.cancel()

    # -- one request --------------------------------------------------------------------------------

    async def _one_generation(
        self, client: httpx.AsyncClient, prompt: str, max_tokens: int, *, logprobs: bool = True
    ) -> Generation:
        body: dict[str, Any] = {"model": self.name, "temperature": 0, "max_tokens": max_tokens}
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
            path = "chat/completions"
        else:
            body["prompt"] = prompt
            # the answer ends at the first newline (as in-process): the server stops there, rather than
            # generating (and, with logprobs, ranking the vocabulary for) tokens that are thrown away
            body["stop"] = ["\n"]
            path = "completions"
        if logprobs and self.capabilities.logprobs is not False:
            if self.api == "chat":
                body.update(logprobs=True, top_logprobs=2)
            else:
                body["logprobs"] = 2
        data = await self._post(client, path, body)
        gen = _parse_chat(data) if self.api == "chat" else _parse_completion(data)
        if self.api == "completions" and "logprobs" in body:
            self._generated.put(prompt, data)
        if "logprobs" in body and self.capabilities.logprobs is None:
            self.capabilities.logprobs = gen.first_token_prob is not None or not gen.text
        return gen

    async def _probe_scoring(self, client: httpx.AsyncClient, prompt: str) -> Literal["echo", "forced"] | None:
        """How this server's prompt log-probabilities can be had: ``echo``, ``forced`` or not at all.

        The tokens it would generate after ``prompt`` have log-probabilities in a completion; scoring
        ``prompt`` plus one of them must give it the same log-probability. Some servers echo numbers that do
        not (llama-cpp-python 0.3.36 on a GPT-2 GGUF: -11.6 for a token its completion gives -0.02, an
        off-by-one in its echo); scoring on them would feed the policy noise, so teacher forcing is checked
        the same way on the runner-up token (a bias leaking into the log-probabilities would show there),
        and a server passing neither check is treated as giving none (two to six requests, once).
        """
        body = {"model": self.name, "prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 2}
        data = await self._post(client, "completions", body, optional=("logprobs",))
        try:
            choice = data["choices"][0] if data else {}
            token = choice.get("text") or ""
            logprob = ((choice.get("logprobs") or {}).get("token_logprobs") or [None])[0]
            tops = ((choice.get("logprobs") or {}).get("top_logprobs") or [None])[0] or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            return None
        if not token or not isinstance(logprob, int | float):
            return None
        echoed = await self._one_score(client, prompt, token)
        if echoed is not None and (echoed.n_tokens == 0 or abs(echoed.logprob - float(logprob)) <= 0.1):
            return "echo"  # n_tokens 0: merged into the prompt's last token, cannot tell: allow
        if echoed is not None:
            logger.warning(
                "%s: echoed prompt log-probability %.2f != completion's %.2f: echo not used for scoring",
                self.name,
                echoed.logprob,
                logprob,
            )
        others = [(t, v) for t, v in tops.items() if t != token] if isinstance(tops, dict) else []
        probe, expected = others[0] if others and isinstance(others[0][1], int | float) else (token, logprob)
        forced = await self._one_forced(client, prompt, probe)
        if forced is not None and forced.n_tokens == 1 and abs(forced.logprob - float(expected)) <= 0.1:
            return "forced"
        logger.warning("%s: no usable prompt log-probabilities (echo or forced): familiarity, pmi off", self.name)
        return None

    async def _one_forced(self, client: httpx.AsyncClient, prompt: str, continuation: str) -> Score | None:
        async def post(path: str, body: dict[str, Any]) -> Any:
            return await self._post(client, path, body, optional=("logit_bias", "tokenize"))

        return await forced_score(post, self._root, self.name, prompt, continuation, self._tokens)

    async def _one_score(self, client: httpx.AsyncClient, prompt: str, continuation: str) -> Score | None:
        body = {
            "model": self.name,
            "prompt": prompt + continuation,
            "max_tokens": 1,
            "temperature": 0,
            "echo": True,
            "logprobs": 1,
        }
        data = await self._post(client, "completions", body, optional=("echo", "logprobs"))
        return _parse_prompt_score(data, len(prompt), len(prompt + continuation))

    async def _post(
        self, client: httpx.AsyncClient, path: str, body: dict[str, Any], optional: tuple[str, ...] = ()
    ) -> Any:
        attempt = 0
        while True:
            retry_after: str | None = None
            self.usage.add(requests=1, retries=int(attempt > 0), kind=_kind(path, body))
            try:
                # a hard deadline for the whole exchange: httpx's timeouts are per read, so a server that
                # trickles bytes would otherwise keep the request alive indefinitely
                response = await asyncio.wait_for(client.post(path, json=body), self.timeout)
            except (TimeoutError, httpx.TimeoutException) as exc:
                if attempt >= self.max_retries:
                    raise EndpointTimeoutError(
                        f"{self.base_url}{path}: no answer within {self.timeout:g}s after {attempt + 1} attempts"
                    ) from exc
                reason = "timeout"
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise EndpointUnreachableError(f"cannot reach {self.base_url}: {exc}") from exc
                reason = f"transport error ({exc})"
            else:
                status = response.status_code
                if status < 400:
                    return _json(response, path)
                if status in (400, 422) and "logprobs" in body and not optional:
                    # a server that rejects logprobs: ask without them, and stop asking for them
                    body.pop("logprobs", None)
                    body.pop("top_logprobs", None)
                    self.capabilities.logprobs = False
                    continue
                if status in (400, 404, 405, 422) and optional:
                    return None  # the optional feature (echo, an endpoint) is refused: the caller records it
                if status not in _RETRY_STATUS or attempt >= self.max_retries:
                    raise EndpointStatusError(f"{path}: HTTP {status}: {_error_message(response)}", status)
                reason = f"HTTP {status}"
                retry_after = response.headers.get("retry-after")
            delay = self._delay(attempt, retry_after)
            logger.warning("retrying %s in %.2fs after %s", path, delay, reason)
            await asyncio.sleep(delay)
            attempt += 1

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: keep the exponential delay
                delay = min(self.max_backoff, max(0.0, float(retry_after)))
        return delay


def _kind(path: str, body: dict[str, Any]) -> RequestKind:
    if path.endswith("tokenize"):
        return "tokenize"
    if "logit_bias" in body:
        return "forced"
    return "echo" if body.get("echo") else "generation"


def _json(response: httpx.Response, path: str) -> Any:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(f"{path}: response is not JSON ({response.text[:80]!r})") from exc
    if not isinstance(data, dict):
        raise MalformedResponseError(f"{path}: response is not a JSON object ({str(data)[:80]!r})")
    return data


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("error", {}).get("message") or data)[:200]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return response.text[:200]


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _prob_margin(logprobs: Sequence[float]) -> tuple[float | None, float | None]:
    tops = sorted((lp for lp in logprobs if isinstance(lp, int | float) and math.isfinite(lp)), reverse=True)
    if not tops:
        return None, None
    prob = math.exp(tops[0])
    return prob, prob - (math.exp(tops[1]) if len(tops) > 1 else 0.0)


def _parse_chat(data: Any) -> Generation:
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
        content = (choice.get("logprobs") or {}).get("content") or []
        tops = [t.get("logprob") for t in content[0].get("top_logprobs", [])] if content else []
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponseError(f"not a chat completion: {str(data)[:120]}") from exc
    prob, margin = _prob_margin(tops)
    return Generation(text=_first_line(text), first_token_prob=prob, margin=margin)


def _parse_completion(data: Any) -> Generation:
    try:
        choice = data["choices"][0]
        text = choice["text"]
        if not isinstance(text, str):
            raise TypeError("text is not a string")
        logprobs = choice.get("logprobs") or {}
        first = (logprobs.get("top_logprobs") or [None])[0] or {}
        tops = list(first.values()) if isinstance(first, dict) else []
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponseError(f"not a completion: {str(data)[:120]}") from exc
    prob, margin = _prob_margin(tops)
    return Generation(text=_first_line(text), first_token_prob=prob, margin=margin)


def _parse_prompt_score(data: Any, start: int, end: int) -> Score | None:
    """Sum of the echoed tokens' log-probabilities whose text starts in ``[start, end)``; ``None`` without them."""
    if data is None:
        return None
    try:
        logprobs = data["choices"][0].get("logprobs") or {}
        offsets = logprobs.get("text_offset") or []
        values = logprobs.get("token_logprobs") or []
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponseError(f"not a completion: {str(data)[:120]}") from exc
    if not offsets or len(offsets) != len(values):
        return None
    total, n = 0.0, 0
    for offset, value in zip(offsets, values, strict=True):
        if start <= offset < end and isinstance(value, int | float):
            total += float(value)
            n += 1
    return Score(logprob=total, n_tokens=n)  # n = 0: the continuation merged into the prompt's last token
