"""Greedy decoding that drops finished rows: a batch's cost follows its live rows, not its longest answer.

``transformers``' ``generate`` keeps every row of a batch in every decoding step until the last row stops,
so a batch of 30 short answers and one long one pays 30 rows of padding for each step of the long one.
:func:`greedy_rows` runs the same greedy steps itself (prefill with the same left padding, position ids
and attention mask as ``generate``, then one token per step with the KV cache), and after each step keeps
only the rows that have not emitted a stop token (``DynamicCache.batch_select_indices``). A row's tokens
are the ones ``generate`` picks for it: the same arithmetic on the same row (measured: identical texts and
first-token probabilities on the world's ask prompts).

Only plain greedy search is reproduced: a model whose generation config asks for logits processing
(repetition penalty, banned words, a minimum length, ...) is left to ``generate`` (:func:`plain_greedy`), and so
is a model holding a module that keeps per-row state across the steps of one generation (a class attribute
``keeps_batch_rows = True``: the context adapters of IKE and SERAC remember which rows got a demonstration at
the first step), because dropping a finished row would shift that state onto the wrong rows.

A :class:`Trace` asks a decoding to keep more than the tokens, for scores read off it instead of a second
forward pass (:mod:`tools.lm._scorebook`): the picked tokens' log-probabilities of some rows, the prefill's
final hidden states at some positions, and following rows (a prompt's row copied after the prefill and fed
another row's picks). The tokens of the batch's own rows are the same with or without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["GreedyRows", "Trace", "greedy_batches", "greedy_rows", "plain_greedy"]

# generation-config fields whose non-default values change what greedy search picks
_NEUTRAL: dict[str, tuple[object, ...]] = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,),
    "renormalize_logits": (None, False),
}


def plain_greedy(model: Any) -> bool:
    """Whether ``model``'s greedy ``generate`` is plain argmax decoding with a KV cache (see the module
    docstring); ``False`` for anything :func:`greedy_rows` would not reproduce."""
    config = getattr(model, "generation_config", None)
    if config is None or getattr(model.config, "is_encoder_decoder", False):
        return False
    if any(getattr(module, "keeps_batch_rows", False) for module in model.modules()):
        return False  # per-row state across steps: the batch's rows must stay as they are
    return all(getattr(config, name, None) in neutral for name, neutral in _NEUTRAL.items())


@dataclass(frozen=True)
class Trace:
    """What a decoding keeps beyond the tokens, for scores read off it (:class:`tools.lm._scorebook.ScoreBook`).

    ``rows``: the batch rows whose emitted tokens' log-probabilities are kept (a log-softmax per row and
    step: only for rows a caller will score). ``hidden_at``: ``(B, T)`` bool, prompt positions whose final
    hidden states the prefill keeps (a model with ``keeps_hidden``: the lean modules; ignored otherwise).
    ``follow``: pairs ``(row, leader)`` of batch rows: a copy of ``row``'s prompt (its cache rows copied
    after the prefill, no second prefill) is fed the tokens ``leader`` picks, one step after another, and
    keeps their log-probabilities after ``row``'s prompt (teacher forcing inside the decoding steps: the
    agent's pmi row, the model's answer after the "N/A" question). The copy adds a row to each step,
    not a forward pass.
    """

    rows: frozenset[int] = frozenset()
    hidden_at: torch.Tensor | None = None
    follow: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class GreedyRows:
    """What :func:`greedy_rows` decoded: each row's new tokens (its stop token included, if it stopped)
    and the softmax of its first step's logits, ``(B, V)`` float32; with a :class:`Trace`, the natural-log
    probability of each new token of its ``rows`` (other rows: empty lists) and the prefill's final hidden
    states at its ``hidden_at`` positions, ``(m, C)`` row-major (``None`` without them)."""

    tokens: list[list[int]]
    first: torch.Tensor
    logprobs: list[list[float]] | None = None
    hidden: torch.Tensor | None = None
    followed: list[list[float]] | None = None  # per ``Trace.follow`` pair: its leader's tokens' log-probabilities


@torch.no_grad()
def greedy_rows(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    trace: Trace | None = None,
) -> GreedyRows:
    """Greedy completions of a left-padded batch, each row decoded until a stop token or ``max_new_tokens``.

    Args:
        model: a decoder-only ``transformers`` model (:func:`plain_greedy`), or a lean one (:mod:`tools.lean`:
            it brings its own cache, ``new_cache()``).
        input_ids, attention_mask: ``(B, T)``, padded on the left.
        max_new_tokens: the most tokens decoded per row (>= 1).
        stop_ids: token ids that end a row (kept as its last token).
        trace: what to keep besides the tokens (:class:`Trace`); the tokens are the same with or without it.
    """
    stop = set(stop_ids)
    state = _prefill(model, input_ids, attention_mask, trace)
    for step in range(max_new_tokens):
        if not state.pick(stop, last_step=step == max_new_tokens - 1):
            break
        out = model(
            input_ids=state.next_ids,
            attention_mask=state.mask,
            position_ids=state.last,
            cache=state.cache,
            use_cache=True,
        )
        state.logits = out.logits[:, -1, :].float()
    return state.rows()


@torch.no_grad()
def greedy_batches(
    model: Any,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    traces: Sequence[Trace | None] | None = None,
) -> list[GreedyRows]:
    """:func:`greedy_rows` of several left-padded batches ``(input_ids, attention_mask)``: each batch's prompts
    are read in a forward pass of their own, then the batches decode in step, one ``step_together`` call per
    step for all of them (a lean GPT-2's: one pass over the weights for every batch's rows, each batch
    attending within its own cache). A row's tokens are the ones :func:`greedy_rows` picks for it. A model
    without ``step_together`` decodes each batch on its own. ``traces``: one :class:`Trace` (or ``None``) per batch.
    """
    traces = list(traces) if traces is not None else [None] * len(batches)
    together = getattr(model, "step_together", None)
    if together is None or len(batches) < 2:
        return [
            greedy_rows(model, ids, mask, max_new_tokens, stop_ids, trace)
            for (ids, mask), trace in zip(batches, traces, strict=True)
        ]
    stop = set(stop_ids)
    states = [_prefill(model, ids, mask, trace) for (ids, mask), trace in zip(batches, traces, strict=True)]
    for step in range(max_new_tokens):
        steps = []
        for state in states:
            if state.live and state.pick(stop, last_step=step == max_new_tokens - 1):
                steps.append(state)
        if not steps:
            break
        got = together([(s.next_ids, s.mask, s.last, s.cache) for s in steps])
        for state, logits in zip(steps, got, strict=True):
            state.logits = logits.float()
    return [s.rows() for s in states]


class _Decoding:
    """One batch's greedy decoding state, a step at a time (:func:`greedy_rows`, :func:`greedy_batches`)."""

    def __init__(
        self,
        cache: Any,
        logits: torch.Tensor,
        mask: torch.Tensor,
        last: torch.Tensor,
        rows: int,
        traced: frozenset[int] | None = None,
        hidden: torch.Tensor | None = None,
    ) -> None:
        self.cache, self.logits, self.mask, self.last = cache, logits, mask, last
        self.first = torch.softmax(logits, dim=-1)
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.live = list(range(rows))  # batch row -> original row
        self.next_ids = torch.empty(0)
        self.traced, self.hidden = traced, hidden
        self.logprobs: list[list[float]] = [[] for _ in range(rows)]
        self.rows_asked = rows
        self.leaders: dict[int, int] = {}  # a following row -> the row whose tokens it is fed
        self._steps: list[tuple[torch.Tensor, torch.Tensor, list[int]]] = []  # (logits, picks, live rows)

    def follow(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Add a row per ``(row, leader)`` pair (before the first pick): ``row``'s cache, mask, position and
        first logits copied, fed ``leader``'s picks (see :class:`Trace`)."""
        b = self.rows_asked
        index = torch.tensor([*range(b), *(row for row, _ in pairs)], device=self.logits.device)
        self.cache.batch_select_indices(index)
        self.mask, self.last, self.logits = self.mask[index], self.last[index], self.logits[index]
        self.leaders = {b + n: leader for n, (_, leader) in enumerate(pairs)}
        self.tokens += [[] for _ in pairs]
        self.logprobs += [[] for _ in pairs]
        self.live = list(range(b + len(pairs)))
        self.traced = frozenset((self.traced or frozenset()) | set(self.leaders))

    def rows(self) -> GreedyRows:
        """What this batch decoded."""
        b = self.rows_asked
        kept = self._logprobs()
        logprobs = kept[:b] if self.traced is not None else None
        followed = kept[b:] if self.leaders else None
        return GreedyRows(
            tokens=self.tokens[:b], first=self.first, logprobs=logprobs, hidden=self.hidden, followed=followed
        )

    def _logprobs(self) -> list[list[float]]:
        """Each traced row's log-probabilities of its picked tokens (``log_softmax`` at them), from the steps
        :meth:`pick` kept: one ``logsumexp`` over every kept step's rows at the end, not a few small
        operations per step (a row's value is its own row's arithmetic either way)."""
        if self._steps:
            traced = self.traced or frozenset()
            logits = torch.cat([step for step, _, _ in self._steps])  # (rows over the steps, V)
            picked = torch.cat([p for _, p, _ in self._steps])
            lp = (logits.gather(-1, picked[:, None]).squeeze(-1) - logits.logsumexp(dim=-1)).tolist()
            rows = [row for _, _, live in self._steps for row in live]
            for row, value in zip(rows, lp, strict=True):
                if row in traced:
                    self.logprobs[row].append(value)
            self._steps = []
        return self.logprobs

    def pick(self, stop: set[int], last_step: bool) -> bool:
        """Take this step's tokens; whether the batch decodes another step (its inputs then set)."""
        # the first maximal index, as ``argmax`` (documented for both), in under half of argmax's time on
        # CPU (a (8, 4096) float32 block, the world GPT-2's vocabulary: 19 vs 50 us, one thread)
        picked = self.logits.max(dim=-1).indices  # (live,)
        tokens = picked.tolist()
        if self.leaders:  # a following row takes its leader's pick (both live: they stop on the same token)
            at = {row: j for j, row in enumerate(self.live)}
            for j, row in enumerate(self.live):
                if row in self.leaders:
                    tokens[j] = tokens[at[self.leaders[row]]]
            picked = torch.tensor(tokens, dtype=picked.dtype, device=picked.device)
        if self.traced and any(row in self.traced for row in self.live):
            self._steps.append((self.logits, picked, list(self.live)))  # log-probabilities at the end
        keep = []
        for j, (row, token) in enumerate(zip(self.live, tokens, strict=True)):
            self.tokens[row].append(token)
            if token not in stop:
                keep.append(j)
        if not keep or last_step:
            self.live = []
            return False
        if len(keep) < len(self.live):  # drop the finished rows from the cache, the mask and the next input
            index = torch.tensor(keep, device=picked.device)
            self.cache.batch_select_indices(index)
            self.mask, self.last, picked = self.mask[index], self.last[index], picked[index]
            self.live = [self.live[j] for j in keep]
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=-1)
        self.last = self.last + 1
        self.next_ids = picked[:, None]
        return True


def _prefill(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, trace: Trace | None = None
) -> _Decoding:
    """Read a left-padded batch's prompts into a new cache: the decoding state before its first pick."""
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # as ``generate``
    cache = _new_cache(model)
    extra: dict[str, Any] = {}
    if trace is not None and trace.hidden_at is not None and getattr(model, "keeps_hidden", False):
        extra["hidden_at"] = trace.hidden_at
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
        **extra,
    )
    logits = out.logits[:, -1, :].float()  # (B, V)
    hidden = out.hidden if extra else None
    traced = trace.rows if trace is not None else None
    state = _Decoding(cache, logits, attention_mask, positions[:, -1:], input_ids.shape[0], traced, hidden)
    if trace is not None and trace.follow:
        state.follow(trace.follow)
    return state


def _new_cache(model: Any) -> Any:
    """The model's own KV cache (a lean module's), else ``transformers``' ``DynamicCache``."""
    new_cache = getattr(model, "new_cache", None)
    if new_cache is not None:
        return new_cache()
    from transformers import DynamicCache

    return DynamicCache(config=model.config)
