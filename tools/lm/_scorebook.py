"""Scores read off a generate pass instead of a second forward over the same tokens (issue 30).

A ``score`` row ``(prompt, continuation)`` costs a forward pass over ``prompt + continuation``. Two kinds of
row re-read tokens that a greedy ``generate`` of ``prompt``-like texts has just read:

- a prompt followed by its own greedy answer: the log-probability of each answer token is the one the
  decoding step that emitted it computed (``log_softmax`` of that step's logits at the picked token);
- a prefix of a prompt (the agent's familiarity row: "Q: Who is the CEO of" + " Nokia" inside
  "Q: Who is the CEO of Nokia?\\nA:"): its continuation's tokens were read by the prefill, whose final hidden
  states at those positions give their logits through the output head alone.

:class:`ScoreBook` holds what a traced generate kept (:meth:`tools.lm.HFLanguageModel.generate_traced`) and
answers a row only when its tokens are exactly the ones the model read or emitted there (the same
tokenisation as ``score``: the row ``prompt + continuation`` tokenised whole, the prompt's tokens counted
alone); any other row gets ``None`` and is the caller's to score. A book answers for the weights that
generated it: it is owned by the caller of one traced generate and read right after it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tools.lm._greedy import GreedyRows, Trace
from tools.lm._protocol import Score

__all__ = ["ScoreBook", "TracePlan", "prefix_hosts"]


@dataclass(frozen=True)
class _Answered:
    """A traced prompt: its tokens as read, its greedy answer's tokens and their log-probabilities."""

    ids: tuple[int, ...]
    answer: tuple[int, ...]
    logprobs: tuple[float, ...]


@dataclass(frozen=True)
class _Prefix:
    """A row read inside a longer prompt: the hidden states predicting its continuation, and those tokens."""

    hidden: torch.Tensor  # (k, C)
    targets: tuple[int, ...]  # (k,)


class ScoreBook:
    """Scores of ``(prompt, continuation)`` rows answered from a traced generate (see the module docstring).

    Args:
        tokenizer: the model's tokenizer (``score``'s tokenisation is checked against it).
        head: final hidden states ``(n, C)`` -> logits ``(n, V)``; ``None`` when the model keeps no hidden states.
    """

    def __init__(self, tokenizer: Any, head: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self._tokenizer = tokenizer
        self._head = head
        self._answered: dict[str, list[_Answered]] = {}
        self._prefixes: dict[tuple[str, str], _Prefix] = {}

    def __len__(self) -> int:
        return sum(len(a) for a in self._answered.values()) + len(self._prefixes)

    def merge(self, other: ScoreBook) -> None:
        """Add ``other``'s rows to this book (two traced generates of one batch, e.g. two answer budgets)."""
        for prompt, reads in other._answered.items():
            self._answered.setdefault(prompt, []).extend(reads)
        self._prefixes.update(other._prefixes)
        self._head = self._head or other._head

    def add_answer(self, prompt: str, ids: Sequence[int], answer: Sequence[int], logprobs: Sequence[float]) -> None:
        """``prompt`` was read as ``ids`` and followed by tokens ``answer`` (its own greedy answer, or another
        prompt's fed to it), the first ``len(logprobs)`` of them with these log-probabilities."""
        self._answered.setdefault(prompt, []).append(_Answered(tuple(ids), tuple(answer), tuple(logprobs)))

    def add_prefix(self, prompt: str, continuation: str, hidden: torch.Tensor, targets: Sequence[int]) -> None:
        """The row ``(prompt, continuation)``: final hidden states ``hidden`` ``(k, C)`` predict its ``k``
        continuation tokens ``targets``."""
        self._prefixes[(prompt, continuation)] = _Prefix(hidden, tuple(targets))

    @torch.no_grad()
    def scores(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Score | None]:
        """Each row's :class:`Score` as ``score`` would give it (within float rounding), or ``None`` when
        this book did not read that row's tokens."""
        out: list[Score | None] = [None] * len(prompts)
        heads: list[tuple[int, _Prefix]] = []
        answer_rows = []
        for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
            prefix = self._prefixes.get((p, c))
            if prefix is not None and self._head is not None:
                heads.append((i, prefix))
            elif p in self._answered:
                answer_rows.append(i)
        if answer_rows:
            tok = self._tokenizer
            rows = tok([prompts[i] + continuations[i] for i in answer_rows], add_special_tokens=False)["input_ids"]
            alone = tok([prompts[i] for i in answer_rows], add_special_tokens=False)["input_ids"]
            for i, row, head in zip(answer_rows, rows, alone, strict=True):
                for read in self._answered[prompts[i]]:
                    out[i] = out[i] or self._from_answer(read, list(row), len(head))
        if heads and self._head is not None:
            hidden = torch.cat([p.hidden for _, p in heads])  # (n, C): one product with the head for all
            logprobs = torch.log_softmax(self._head(hidden).float(), dim=-1)
            targets = torch.tensor([t for _, p in heads for t in p.targets], device=logprobs.device)
            token_lp = logprobs.gather(-1, targets[:, None]).squeeze(-1)
            for (i, _), lp in zip(heads, token_lp.split([len(p.targets) for _, p in heads]), strict=True):
                out[i] = Score(logprob=float(lp.sum()), n_tokens=int(lp.numel()))
        return out

    @staticmethod
    def _from_answer(read: _Answered, row: list[int], prompt_len: int) -> Score | None:
        """The row's score from the emitted tokens' log-probabilities, if the row is the prompt as read
        followed by the first tokens of its answer."""
        k = len(row) - prompt_len
        if prompt_len != len(read.ids) or k < 1 or k > len(read.logprobs):
            return None
        if tuple(row[:prompt_len]) != read.ids or tuple(row[prompt_len:]) != read.answer[:k]:
            return None
        lp = torch.tensor(read.logprobs[:k], dtype=torch.float32)  # summed as ``score`` sums: float32
        return Score(logprob=float(lp.sum()), n_tokens=k)


def prefix_hosts(prompts: Sequence[str], prefixes: Sequence[tuple[str, str]]) -> dict[int, list[tuple[str, str]]]:
    """For each prompt index, the rows ``(prompt, continuation)`` of ``prefixes`` whose text begins it (each
    row placed in the first such prompt; rows with an empty prompt left out: nothing predicts their first
    token)."""
    hosts: dict[int, list[tuple[str, str]]] = {}
    for p, c in dict.fromkeys(prefixes):
        if not p:
            continue
        text = p + c
        for i, prompt in enumerate(prompts):
            if prompt.startswith(text):
                hosts.setdefault(i, []).append((p, c))
                break
    return hosts


@dataclass(frozen=True)
class _Placed:
    row: tuple[str, str]
    batch_row: int
    positions: tuple[int, ...]  # batch positions whose hidden states predict the continuation
    targets: tuple[int, ...]


@dataclass
class TracePlan:
    """What one left-padded batch of a traced generate keeps (its :class:`Trace`) and where it goes in a
    :class:`ScoreBook` afterwards.

    Args:
        prompts: the prompts of the batch, in batch order; ``ids`` / ``mask``: the batch as read ``(B, T)``.
    """

    prompts: list[str]
    ids: torch.Tensor
    mask: torch.Tensor
    trace: Trace
    placed: list[_Placed] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        tokenizer: Any,
        prompts: Sequence[str],
        chunk: Sequence[int],
        batch: Mapping[str, torch.Tensor],
        answers_of: Collection[str],
        hosts: Mapping[int, Sequence[tuple[str, str]]],
        answers_after: Collection[tuple[str, str]] = (),
    ) -> TracePlan:
        """The plan of the batch holding ``prompts[i]`` for ``i`` in ``chunk`` (``hosts``: :func:`prefix_hosts`;
        ``answers_after``: pairs ``(prompt, leader)`` both in this batch get a following row, :class:`Trace`)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        texts = [prompts[i] for i in chunk]
        rows = frozenset(b for b, text in enumerate(texts) if text in answers_of)
        where = {text: b for b, text in enumerate(texts)}
        follow = tuple(
            (where[p], where[lead]) for p, lead in dict.fromkeys(answers_after) if p in where and lead in where
        )
        wanted = [(b, row) for b, i in enumerate(chunk) for row in hosts.get(i, ())]
        plan = cls(texts, ids, mask, Trace(rows=rows, follow=follow))
        if not wanted:
            return plan
        width = ids.shape[1]
        whole = tokenizer([p + c for _, (p, c) in wanted], add_special_tokens=False)["input_ids"]
        alone = tokenizer([p for _, (p, _) in wanted], add_special_tokens=False)["input_ids"]
        hidden_at = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
        for (b, row), tokens, head in zip(wanted, whole, alone, strict=True):
            read = plan.read(b)
            n, plen = len(tokens), len(head)
            if plen < 1 or n <= plen or list(tokens) != read[:n]:
                continue  # not the tokens the prompt was read as (a merge across the boundary, a cut prompt)
            off = width - len(read)  # left padding
            positions = tuple(range(off + plen - 1, off + n - 1))
            hidden_at[b, list(positions)] = True
            plan.placed.append(_Placed(row, b, positions, tuple(tokens[plen:])))
        if plan.placed:
            plan.trace = Trace(rows=rows, hidden_at=hidden_at, follow=follow)
        return plan

    def read(self, b: int) -> list[int]:
        """Batch row ``b``'s tokens as the model read them (padding left out)."""
        return [int(t) for t in self.ids[b][self.mask[b].bool()].tolist()]

    def record(self, book: ScoreBook, got: GreedyRows) -> None:
        """Put what the decoding kept (``got``) into ``book``."""
        if got.logprobs is not None:
            for b in self.trace.rows:
                book.add_answer(self.prompts[b], self.read(b), got.tokens[b], got.logprobs[b])
        if got.followed is not None:
            for (b, leader), logprobs in zip(self.trace.follow, got.followed, strict=True):
                book.add_answer(self.prompts[b], self.read(b), got.tokens[leader], logprobs)
        if got.hidden is None or self.trace.hidden_at is None:
            return
        index = self.trace.hidden_at.reshape(-1).cumsum(0) - 1  # flat batch position -> row of ``got.hidden``
        width = self.ids.shape[1]
        for placed in self.placed:
            rows = index[[placed.batch_row * width + t for t in placed.positions]]
            book.add_prefix(*placed.row, got.hidden[rows], placed.targets)
