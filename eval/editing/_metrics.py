"""KnowEdit metrics of an edited model: reliability, generalization, locality, portability, fluency.

Every metric is measured two ways (``Mode``):

* ``"teacher_forced"`` — token accuracy of the expected answer, as EasyEdit computes it: the prompt and the answer
  are fed together, and the score of one prompt is the fraction of answer tokens that are the model's argmax
  given the gold prefix before them. For locality the pre- and post-edit argmax tokens over the ground-truth
  answer are compared instead (fraction of positions that agree).
* ``"generation"`` — exact match of the greedy answer: the normalised generated line (:func:`normalize_answer`)
  equals the normalised target or starts with it followed by a space (``"Daniel Zhang."`` matches
  ``"Daniel Zhang"``; ``"Parisian"`` does not match ``"Paris"``). For locality, the pre- and post-edit
  normalised answer lines must be equal. Answers are generated greedily up to the expected answer's token count
  plus two (enough for the answer, its full stop and a sign of going on), cut at the first newline.

Definitions (``../shared/ARCHITECTURE.md``, "Metric definitions"), per case, then averaged over cases:

* reliability — success on the edit prompt with the new object;
* generalization — success with the new object on the paraphrases that the *unedited* model answers correctly
  with the old object (in the same mode); ``generalization_all`` counts every paraphrase. A case without an
  old object (external datasets) counts all its paraphrases; a case none of whose paraphrases qualify is left
  out of ``generalization``;
* locality — agreement of post-edit with pre-edit predictions on unrelated prompts; ``locality_vs_truth`` is
  post-edit success against their ground-truth answers;
* portability — success on the reverse / multi-hop / alias prompts that follow from the edit (also per kind);
* fluency — ROME/MEMIT's n-gram entropy of free generations from the edit prompts: for each text the mean of
  ``(2/3)·H2`` and ``(4/3)·H3``, where ``Hn`` is the entropy in bits of the text's word n-gram frequencies
  (kmeng01/rome ``experiments/py/eval_utils_counterfact.py``: ``compute_n_gram_entropy``), averaged over texts.
  ROME tokenises with NLTK's ``word_tokenize`` and samples with top-k 5; here words and punctuation marks are
  split by a regular expression (NLTK is not a dependency) and generation is greedy, so runs are
  deterministic. Like ROME, the text scored is the prompt followed by its continuation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from eval._normalize import normalize_answer
from eval._zh_normalize import needs_zh, normalize_zh
from tools.edit import EditRequest, target_text
from tools.errors import InvalidInputError
from tools.lm import LocalLanguageModel

__all__ = [
    "MODES",
    "AfterEdit",
    "BeforeEdit",
    "CaseLike",
    "CaseScore",
    "LMProber",
    "Mode",
    "Prober",
    "PromptOutcome",
    "TargetPrediction",
    "aggregate",
    "agreement",
    "answer_matches",
    "fluency",
    "measure_after",
    "measure_before",
    "ngram_entropy",
    "old_answer",
    "score_case",
    "success",
    "text_entropy",
]

Mode = Literal["teacher_forced", "generation"]
MODES: tuple[Mode, ...] = ("teacher_forced", "generation")
_SPARE_TOKENS = 2  # greedy answers are generated to the expected answer's length plus these
# words, and each punctuation mark alone (close to NLTK's word_tokenize); each CJK character is a word (Chinese
# has no spaces: a whole clause would otherwise be one "word" and every fluency near zero)
_WORDS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]|[^\W\u3400-\u4dbf\u4e00-\u9fff]+|[^\w\s]")
_ZH_SENTENCE_END = re.compile(r"[。！？!?\n]")  # a Chinese greedy answer ends at its first sentence


class CaseLike(Protocol):
    """What the metrics need of an edit case (``eval.editing.EditCase`` has these and more).

    ``locality`` holds ``(prompt, ground-truth answer)`` pairs; ``portability`` holds
    ``(prompt, answer, kind)`` triples, ``kind`` e.g. ``"reverse"``, ``"multi_hop"``, ``"alias"``. Prompts are
    ready for the model (questions already wrapped in its prompt format).
    """

    @property
    def id(self) -> str: ...

    @property
    def request(self) -> EditRequest: ...

    @property
    def paraphrases(self) -> tuple[str, ...]: ...

    @property
    def locality(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def portability(self) -> tuple[tuple[str, str, str], ...]: ...


def old_answer(case: CaseLike) -> str | None:
    """The object the edit replaces: the request's ``target_old``, else a ``ground_truth`` field if the case has one."""
    if case.request.target_old:
        return case.request.target_old
    truth = getattr(case, "ground_truth", None)
    return truth if isinstance(truth, str) and truth.strip() else None


# ---------------------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class TargetPrediction:
    """Teacher-forced view of one ``prompt + answer``: the answer's token ids and the argmax at each of them.

    ``predicted[i]`` is the model's most likely token at the position that predicts ``gold[i]``, given the
    prompt and ``gold[:i]``.
    """

    gold: tuple[int, ...]
    predicted: tuple[int, ...]

    @property
    def accuracy(self) -> float:
        """Fraction of answer tokens that are the argmax (EasyEdit's token-level accuracy); 0 for no tokens."""
        if not self.gold:
            return 0.0
        return sum(g == p for g, p in zip(self.gold, self.predicted, strict=True)) / len(self.gold)


@dataclass(frozen=True)
class PromptOutcome:
    """The model's behaviour on one prompt whose expected answer is known, in both modes at once.

    ``text`` is the greedy answer line; ``target`` the teacher-forced prediction over the expected answer.
    """

    text: str
    target: TargetPrediction


class Prober(Protocol):
    """How the metrics query a model. :class:`LMProber` is the implementation; tests pass stubs."""

    def targets(self, prompts: Sequence[str], answers: Sequence[str]) -> list[TargetPrediction]:
        """Teacher-forced argmax tokens over each answer after its prompt."""
        ...

    def answers(self, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        """The greedy answer line after each prompt (at most ``max_new_tokens`` tokens when given)."""
        ...

    def free_text(self, prompts: Sequence[str]) -> list[str]:
        """A longer free generation after each prompt, prompt included (for fluency)."""
        ...


class LMProber:
    """A :class:`Prober` over a local HF model.

    Args:
        lm: the model (its weights may be edited between calls; nothing is cached).
        answer_tokens: new tokens for greedy answers (cut at the first newline).
        fluency_tokens: new tokens of the free generations scored for fluency.
        batch_size: prompts per forward pass.
    """

    def __init__(
        self, lm: LocalLanguageModel, *, answer_tokens: int = 24, fluency_tokens: int = 40, batch_size: int = 32
    ) -> None:
        if min(answer_tokens, fluency_tokens, batch_size) < 1:
            raise InvalidInputError("answer_tokens, fluency_tokens and batch_size must be >= 1")
        self.lm = lm
        self.answer_tokens = answer_tokens
        self.fluency_tokens = fluency_tokens
        self.batch_size = batch_size

    @property
    def _device(self) -> torch.device:
        return next(self.lm.model.parameters()).device

    def targets(self, prompts: Sequence[str], answers: Sequence[str]) -> list[TargetPrediction]:
        """Teacher-forced argmax tokens (``prompt`` and ``answer`` tokenised apart, as the editors do)."""
        if len(prompts) != len(answers):
            raise InvalidInputError("prompts and answers must have the same length")
        out: list[TargetPrediction] = []
        for start in range(0, len(prompts), self.batch_size):
            stop = start + self.batch_size
            out.extend(self._targets_batch(prompts[start:stop], answers[start:stop]))
        return out

    @torch.no_grad()
    def _targets_batch(self, prompts: Sequence[str], answers: Sequence[str]) -> list[TargetPrediction]:
        tok = self.lm.tokenizer
        rows: list[list[int]] = []
        spans: list[tuple[int, tuple[int, ...]]] = []  # (first answer position, answer ids)
        for prompt, answer in zip(prompts, answers, strict=True):
            if not answer.strip():
                raise InvalidInputError(f"empty expected answer after prompt {prompt!r}")
            p_ids = list(tok(prompt, add_special_tokens=False)["input_ids"])
            a_ids = tuple(tok(target_text(prompt, answer), add_special_tokens=False)["input_ids"])
            if not p_ids:
                raise InvalidInputError("empty prompt")
            rows.append(p_ids + list(a_ids))
            spans.append((len(p_ids), a_ids))
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)  # (B, L), right padded
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, row in enumerate(rows):
            ids[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = 1
        logits = self.lm.model(input_ids=ids.to(self._device), attention_mask=mask.to(self._device)).logits
        best = logits.argmax(dim=-1).cpu()  # (B, L): best[b, t] predicts token t + 1
        out = []
        for b, (first, a_ids) in enumerate(spans):
            predicted = best[b, first - 1 : first - 1 + len(a_ids)].tolist()
            out.append(TargetPrediction(gold=a_ids, predicted=tuple(int(t) for t in predicted)))
        return out

    def answers(self, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        """Greedy answer lines (the model's own ``generate``), at most ``answer_tokens`` tokens."""
        if not prompts:
            return []
        budget = min(max_new_tokens or self.answer_tokens, self.answer_tokens)
        gens = self.lm.generate(list(prompts), max_new_tokens=budget)
        return [g.text for g in gens]

    def free_text(self, prompts: Sequence[str]) -> list[str]:
        """Prompt + ``fluency_tokens`` greedy tokens, newlines kept (unlike :meth:`answers`)."""
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            out.extend(self._free_batch(prompts[start : start + self.batch_size]))
        return out

    @torch.no_grad()
    def _free_batch(self, prompts: Sequence[str]) -> list[str]:
        tok = self.lm.tokenizer
        tok.padding_side = "left"
        batch = tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        ids = batch["input_ids"].to(self._device)  # (B, L), left padded
        model: Any = self.lm.model  # a transformers PreTrainedModel (typed as a plain Module by the protocol)
        result = model.generate(
            input_ids=ids,
            attention_mask=batch["attention_mask"].to(self._device),
            max_new_tokens=self.fluency_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        texts = tok.batch_decode(result[:, ids.shape[1] :], skip_special_tokens=True)
        return [prompt + text for prompt, text in zip(prompts, texts, strict=True)]


def _outcomes(prober: Prober, pairs: Sequence[tuple[str, str]]) -> list[PromptOutcome]:
    if not pairs:
        return []
    prompts = [p for p, _ in pairs]
    targets = prober.targets(prompts, [a for _, a in pairs])
    # the answer, its full stop and one more token are enough to judge a match or a change; generating fewer
    # tokens than the prober's limit keeps scoring cheap
    texts = prober.answers(prompts, max_new_tokens=max(len(t.gold) for t in targets) + _SPARE_TOKENS)
    return [PromptOutcome(text, target) for text, target in zip(texts, targets, strict=True)]


# ---------------------------------------------------------------------------------------------------- scoring


def answer_matches(generated: str, target: str) -> bool:
    """Exact match of a greedy answer: normalised, equal to the target or starting with it and a space.

    A Chinese or pinyin target (:func:`~eval._zh_normalize.needs_zh`) is compared character by character
    (traditional = simplified, tone numbers = marks) with the answer's first sentence (up to "。", "！", "？").
    """
    if needs_zh(generated, [target]):
        first = _ZH_SENTENCE_END.split(generated.strip(), maxsplit=1)[0]
        return bool(normalize_zh(target)) and normalize_zh(first) == normalize_zh(target)
    gen, gold = normalize_answer(generated), normalize_answer(target)
    return bool(gold) and (gen == gold or gen.startswith(gold + " "))


def success(probe: PromptOutcome, answer: str, mode: Mode) -> float:
    """How well ``probe`` gives ``answer``: token accuracy (teacher-forced; ``probe.target`` must be over
    ``answer``) or 1.0 / 0.0 exact match of the greedy answer (generation)."""
    if mode == "teacher_forced":
        return probe.target.accuracy
    return float(answer_matches(probe.text, answer))


def agreement(before: PromptOutcome, after: PromptOutcome, mode: Mode) -> float:
    """Locality of one prompt: share of answer positions whose argmax did not change (teacher-forced), or
    1.0 / 0.0 for an unchanged normalised greedy answer (generation)."""
    if mode == "teacher_forced":
        pre, post = before.target.predicted, after.target.predicted
        if not pre:
            return 1.0
        return sum(a == b for a, b in zip(pre, post, strict=True)) / len(pre)
    return float(normalize_answer(before.text) == normalize_answer(after.text))


@dataclass(frozen=True)
class BeforeEdit:
    """The unedited model on one case: paraphrases against the old object, locality prompts against the truth."""

    paraphrases: tuple[PromptOutcome, ...]
    locality: tuple[PromptOutcome, ...]


@dataclass(frozen=True)
class AfterEdit:
    """The edited model on one case: edit prompt, paraphrases (new object), locality (truth), portability."""

    rewrite: PromptOutcome
    paraphrases: tuple[PromptOutcome, ...]
    locality: tuple[PromptOutcome, ...]
    portability: tuple[PromptOutcome, ...]


def _split(flat: list[PromptOutcome], sizes: Iterable[int]) -> list[tuple[PromptOutcome, ...]]:
    out, start = [], 0
    for size in sizes:
        out.append(tuple(flat[start : start + size]))
        start += size
    return out


def measure_before(prober: Prober, cases: Sequence[CaseLike]) -> list[BeforeEdit]:
    """Probe the unedited model (one batched pass over all cases' prompts).

    A case without an old object gets its paraphrases probed against the new one (unused: all count).
    """
    para = [(p, old_answer(c) or c.request.target_new) for c in cases for p in c.paraphrases]
    loc = [(p, a) for c in cases for p, a in c.locality]
    para_probes = _split(_outcomes(prober, para), (len(c.paraphrases) for c in cases))
    loc_probes = _split(_outcomes(prober, loc), (len(c.locality) for c in cases))
    return [BeforeEdit(p, q) for p, q in zip(para_probes, loc_probes, strict=True)]


def measure_after(prober: Prober, cases: Sequence[CaseLike]) -> list[AfterEdit]:
    """Probe the edited model (one batched pass over all cases' prompts)."""
    rewrite = _outcomes(prober, [(c.request.prompt, c.request.target_new) for c in cases])
    para = [(p, c.request.target_new) for c in cases for p in c.paraphrases]
    loc = [(p, a) for c in cases for p, a in c.locality]
    port = [(p, a) for c in cases for p, a, _ in c.portability]
    para_probes = _split(_outcomes(prober, para), (len(c.paraphrases) for c in cases))
    loc_probes = _split(_outcomes(prober, loc), (len(c.locality) for c in cases))
    port_probes = _split(_outcomes(prober, port), (len(c.portability) for c in cases))
    return [AfterEdit(r, p, q, s) for r, p, q, s in zip(rewrite, para_probes, loc_probes, port_probes, strict=True)]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class CaseScore:
    """One case's metrics in one mode; a metric without prompts to count is ``None``."""

    reliability: float
    generalization: float | None  # over the paraphrases the unedited model answered with the old object
    generalization_all: float | None  # over every paraphrase
    locality: float | None  # agreement with the unedited model
    locality_vs_truth: float | None  # against the ground-truth answers
    portability: float | None
    portability_by_kind: Mapping[str, float] = field(default_factory=dict)


def score_case(case: CaseLike, before: BeforeEdit, after: AfterEdit, mode: Mode) -> CaseScore:
    """One case's metrics in one mode from its probes before and after the edits."""
    new, old = case.request.target_new, old_answer(case)
    post_para = [success(p, new, mode) for p in after.paraphrases]
    if old is None:
        understood = list(range(len(post_para)))
    else:
        understood = [i for i, p in enumerate(before.paraphrases) if success(p, old, mode) == 1.0]
    by_kind: dict[str, list[float]] = {}
    for (_, answer, kind), probe in zip(case.portability, after.portability, strict=True):
        by_kind.setdefault(kind, []).append(success(probe, answer, mode))
    return CaseScore(
        reliability=success(after.rewrite, new, mode),
        generalization=_mean([post_para[i] for i in understood]),
        generalization_all=_mean(post_para),
        locality=_mean([agreement(b, a, mode) for b, a in zip(before.locality, after.locality, strict=True)]),
        locality_vs_truth=_mean(
            [success(p, answer, mode) for (_, answer), p in zip(case.locality, after.locality, strict=True)]
        ),
        portability=_mean([v for values in by_kind.values() for v in values]),
        portability_by_kind={kind: sum(v) / len(v) for kind, v in sorted(by_kind.items())},
    )


_SCORE_KEYS = ("reliability", "generalization", "generalization_all", "locality", "locality_vs_truth", "portability")


def aggregate(scores: Sequence[CaseScore]) -> dict[str, Any]:
    """Macro averages over cases (``None`` values skipped; ``None`` when every case has ``None``).

    Returns the six metrics of :class:`CaseScore`, ``portability_by_kind`` (kind -> mean over the cases having
    that kind) and ``generalization_cases`` (how many cases had a paraphrase counted by ``generalization``).
    """
    out: dict[str, Any] = {}
    for key in _SCORE_KEYS:
        out[key] = _mean([v for s in scores if (v := getattr(s, key)) is not None])
    kinds: dict[str, list[float]] = {}
    for s in scores:
        for kind, value in s.portability_by_kind.items():
            kinds.setdefault(kind, []).append(value)
    out["portability_by_kind"] = {kind: sum(v) / len(v) for kind, v in sorted(kinds.items())}
    out["generalization_cases"] = sum(1 for s in scores if s.generalization is not None)
    return out


# ---------------------------------------------------------------------------------------------------- fluency


def ngram_entropy(tokens: Sequence[str], n: int) -> float:
    """Shannon entropy in bits of the frequency distribution of ``tokens``' n-grams (0 when there are none)."""
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def text_entropy(text: str) -> float:
    """ROME's ``compute_n_gram_entropy`` of one text: mean of ``(2/3)·H2`` and ``(4/3)·H3`` over its words."""
    tokens = _WORDS.findall(text)
    return (2 / 3 * ngram_entropy(tokens, 2) + 4 / 3 * ngram_entropy(tokens, 3)) / 2


def fluency(texts: Sequence[str]) -> float | None:
    """Mean :func:`text_entropy` over ``texts`` (``None`` for no texts). Higher is more varied text."""
    return _mean([text_entropy(t) for t in texts])
