"""Prompt log-probabilities by teacher forcing, for servers whose echoed prompt log-probabilities are unusable.

llama-cpp-python 0.3.36 echoes each prompt token's log-probability under the distribution computed *after*
that token (an off-by-one in ``Llama._create_completion``: ``scores[i]`` predicts token ``i + 1`` but is
read for token ``i``), so its echo cannot be used for scoring. Its completions' own log-probabilities are
right, and it takes ``logit_bias`` without letting the bias into the reported log-probabilities; so a
continuation is scored one token at a time: the prompt so far, ``max_tokens=1`` and a +100 bias on the
continuation's next token, whose reported log-probability is then the teacher-forced one (measured on the
reference GPT-2: -24.050 against -24.052 in-process for " Nokia Corporation").

Token ids come from the server's tokenizer endpoint (llama-cpp-python's ``/extras/tokenize``, llama.cpp's
``/tokenize``), kept in a :class:`TokenCache`: up to two requests per row. Then the whole continuation (at
most :data:`MAX_FORCED_TOKENS` tokens; a longer one is scored on its first ones) is tried in one request:
``max_tokens`` = its length and the +100 bias on each of its distinct tokens, so that greedy decoding can
only pick among them, and usually picks them in order. The answer is taken only when it provably is the
continuation's own tokens (:func:`_spelled_exactly`); otherwise, as for a one-token continuation, one
request per token, in order. Measured on the reference GPT-2 served by llama.cpp, 160 rows (80 dev
questions' gold answers after the question and after its first words): 458 forced requests instead of 544,
every row's score within 0.003 of the one-at-a-time one (which re-tokenizes the text forced so far) and both
as close to the in-process scores (mean difference 0.002, at most 0.016).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from tools.lm._protocol import Score

__all__ = ["MAX_FORCED_TOKENS", "GenerationMemo", "Post", "TokenCache", "forced_score", "tokenize"]

MAX_FORCED_TOKENS = 16
FORCE_BIAS = 100.0
# (path under the server's root, the body's text field): llama-cpp-python's, then llama.cpp's own server's
_TOKENIZE = (("extras/tokenize", "input"), ("tokenize", "content"))

Post = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""``post(url, body)``: the parsed JSON answer, or ``None`` when the server refuses the request (400/404/422)."""


class TokenCache:
    """The server's token ids of recent texts (a prompt recurs: the same question about "N/A" for every
    subject of a relation), so that each is asked of its tokenizer once. Bounded (oldest forgotten first),
    thread-safe; a text the server could not tokenize is not kept."""

    def __init__(self, maxsize: int = 4096) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> list[int] | None:
        with self._lock:
            ids = self._items.get(text)
            if ids is not None:
                self._items.move_to_end(text)
        return None if ids is None else list(ids)

    def put(self, text: str, ids: list[int]) -> None:
        with self._lock:
            self._items[text] = tuple(ids)
            self._items.move_to_end(text)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)


async def tokenize(post: Post, root: str, model: str, text: str, cache: TokenCache | None = None) -> list[int] | None:
    """The server's token ids for ``text`` (no special tokens added by us), or ``None`` without an endpoint;
    from ``cache`` when it holds them (no request)."""
    known = cache.get(text) if cache is not None else None
    if known is not None:
        return known
    for path, key in _TOKENIZE:
        data = await post(root + path, {"model": model, key: text})
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens):
            if cache is not None:
                cache.put(text, tokens)
            return tokens
    return None


async def forced_score(
    post: Post, root: str, model: str, prompt: str, continuation: str, cache: TokenCache | None = None
) -> Score | None:
    """Teacher-forced log-probability of ``continuation`` after ``prompt`` (see the module docstring);
    token ids come from ``cache`` where it has them.

    Returns ``None`` when the server lacks what it takes (tokenizer endpoint, ``logit_bias``, logprobs).
    A token whose text cannot be cut from the continuation (a multi-byte character split across tokens)
    ends the row: the score covers the tokens before it (``n_tokens`` says how many).
    """
    ids_prompt, ids_full = await asyncio.gather(
        tokenize(post, root, model, prompt, cache), tokenize(post, root, model, prompt + continuation, cache)
    )
    if ids_prompt is None or ids_full is None:
        return None
    targets = ids_full[len(ids_prompt) :][:MAX_FORCED_TOKENS]
    if len(set(targets)) > 1:  # one biased token is forced for sure: nothing to try
        steps = _forced_tokens(await post("completions", _forcing(model, prompt, targets)))
        if steps and _spelled_exactly(steps, targets, continuation):
            return Score(logprob=sum(v for _, v in steps), n_tokens=len(steps))
    text, rest = prompt, continuation
    total, n = 0.0, 0
    for token in targets:
        steps = _forced_tokens(await post("completions", _forcing(model, text, [token])))
        if not steps:
            return None
        piece, logprob = steps[0]
        total, n = total + logprob, n + 1
        if not piece or not rest.startswith(piece):
            break
        text, rest = text + piece, rest[len(piece) :]
    return Score(logprob=total, n_tokens=n)


def _forcing(model: str, prompt: str, tokens: list[int]) -> dict[str, Any]:
    """A greedy completion of ``len(tokens)`` tokens that can only pick among ``tokens`` (+100 each)."""
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": len(tokens),
        "temperature": 0,
        "logprobs": 1,
        "logit_bias": {str(t): FORCE_BIAS for t in dict.fromkeys(tokens)},
    }


def _spelled_exactly(steps: list[tuple[str, float]], targets: list[int], continuation: str) -> bool:
    """The generated ``steps`` are exactly the ``targets`` tokens, in order (their log-probabilities then are
    the teacher-forced ones), though the answer names tokens by text only, not by id.

    Sure when: as many steps as targets, each step's text continuing the continuation where the previous
    left it, as many distinct step texts as distinct targets, and no step text a proper prefix of another.
    Proof: every step is one of the biased ``targets`` (+100 outweighs any logit), and distinct token ids
    have distinct texts (a BPE vocabulary), so with as many distinct texts every target's text is among the
    steps'. At the first step that differed from its target, both texts would start the rest of the
    continuation at the same place (the targets spell it), so one would be a proper prefix of the other.
    """
    if len(steps) != len(targets):
        return False
    rest = continuation
    for piece, _ in steps:
        if not piece or not rest.startswith(piece):
            return False
        rest = rest[len(piece) :]
    texts = {piece for piece, _ in steps}
    if len(texts) != len(set(targets)):
        return False
    return not any(a != b and b.startswith(a) for a in texts for b in texts)


def _forced_tokens(data: Any) -> list[tuple[str, float]] | None:
    """Each generated token's text and log-probability (``logprobs.tokens`` / ``token_logprobs``); ``None``
    when the answer lacks them."""
    try:
        logprobs = data["choices"][0].get("logprobs") or {}
        tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(tokens, list) or not isinstance(values, list) or not tokens or len(tokens) != len(values):
        return None
    if not all(isinstance(t, str) and isinstance(v, int | float) for t, v in zip(tokens, values, strict=True)):
        return None
    return [(t, float(v)) for t, v in zip(tokens, values, strict=True)]


class GenerationMemo:
    """The log-probabilities of recent completions' own tokens, to score a continuation the model generated.

    A greedy completion's ``token_logprobs`` are the teacher-forced log-probabilities of its tokens, so
    scoring ``prompt`` + the text of its first ``k`` tokens needs no request (pmi scores the model's own
    answer after the very prompt that produced it). A continuation that is not exactly such a token prefix is
    not found (``None``). Bounded: the oldest of ``maxsize`` prompts is forgotten first; thread-safe.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[str, tuple[tuple[str, float], ...]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, prompt: str, data: Any) -> None:
        """Keep the tokens of ``data`` (a ``/completions`` answer to ``prompt``) when it lists them all."""
        try:
            logprobs = data["choices"][0].get("logprobs") or {}
            tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
        except (KeyError, IndexError, TypeError, AttributeError):
            return
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
            return
        if not all(isinstance(t, str) and isinstance(v, int | float) for t, v in zip(tokens, values, strict=True)):
            return
        with self._lock:
            self._items[prompt] = tuple((t, float(v)) for t, v in zip(tokens, values, strict=True))
            self._items.move_to_end(prompt)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def score(self, prompt: str, continuation: str) -> Score | None:
        """``continuation``'s score when it is exactly the text of the first tokens generated after ``prompt``."""
        with self._lock:
            tokens = self._items.get(prompt)
        if not tokens or not continuation:
            return None
        text, total = "", 0.0
        for n, (token, value) in enumerate(tokens, start=1):
            text, total = text + token, total + value
            if text == continuation:
                return Score(logprob=total, n_tokens=n)
            if not continuation.startswith(text):
                return None
        return None
