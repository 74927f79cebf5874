"""Local Hugging Face causal LMs loaded from a directory (never from a hub).

Device and dtype follow the machine: CUDA (bfloat16 when supported) > Apple MPS > CPU (float32).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from tools.errors import InvalidInputError, ModelLoadError, TokenizerMismatchError
from tools.lm._context import context_length
from tools.lm._format import PromptFormat
from tools.lm._greedy import greedy_batches, plain_greedy
from tools.lm._protocol import Generation, Score, TokenProb
from tools.lm._scorebook import ScoreBook, TracePlan, prefix_hosts

logger = logging.getLogger(__name__)

_CHUNKS_IN_STEP = 4  # length chunks decoded together by a lean model (memory: their caches live at once)
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def pick_device() -> torch.device:
    """The best device present: CUDA, then MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on GPUs that support it, float32 elsewhere (CPU matmuls in bf16 are slow and lossy)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def length_chunks(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of ``texts`` in batches of similar length, shortest first (each at most ``batch_size``).

    A batch is padded to its longest row and a forward pass costs every padded position, so a short
    question batched with a long retrieval prompt would pay for the long one's length: a batch closes
    when the next text is more than 1.5 times its shortest plus 24 characters (lengths in characters: a
    proxy for tokens that needs no second tokenisation).
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < batch_size and len(texts[i]) <= 1.5 * len(texts[chunks[-1][0]]) + 24:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def check_model_dir(path: Path) -> None:
    """Raise :class:`ModelLoadError` unless ``path`` holds a config and weights."""
    if not path.is_dir():
        raise ModelLoadError(f"model directory {path} does not exist")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"no model config in {path} (expected config.json)")
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise ModelLoadError(
            f"no model weights in {path} (expected config.json and model.safetensors or pytorch_model.bin)"
        )


class HFLanguageModel:
    """A causal LM from a local directory, with batched scoring and greedy generation.

    Example:
        >>> lm = HFLanguageModel.load("eval/world/models/gpt2-world")  # doctest: +SKIP
        >>> lm.generate([lm.prompt_format.question("Who is the CEO of Nokia?")])[0].text  # doctest: +SKIP
    """

    local_weights = True  # a LocalLanguageModel, known without reading .model (tools.lm.is_local_model)

    def __init__(self, model: Any, tokenizer: Any, name: str, prompt_format: PromptFormat | None = None) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self.name = name
        self.prompt_format = prompt_format or PromptFormat()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        _check_vocab(model, tokenizer, name)
        # a completion is cut at its first newline: a row that emits the newline token is done, so a batch
        # stops once every row has (the cut text is the same; later tokens were thrown away anyway)
        newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
        self._stop_ids = [tokenizer.eos_token_id, *(newline if len(newline) == 1 else [])]

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> HFLanguageModel:
        """Load model and tokenizer from ``path`` (local files only).

        Raises:
            ModelLoadError: the directory is missing, has no weights, or cannot be read.
            TokenizerMismatchError: the tokenizer's vocabulary exceeds the model's embeddings.
        """
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        check_model_dir(path)
        dev = torch.device(device) if device is not None else pick_device()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype or pick_dtype(dev))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
            # unreadable config, corrupt or truncated weights, shapes that do not fit the config
            raise ModelLoadError(f"cannot load model from {path}: {exc}") from exc
        model.to(dev)  # type: ignore[arg-type]  # transformers' .to wrapper confuses mypy
        model.eval()
        logger.info("loaded %s on %s (%s)", path, dev, model.dtype)
        return cls(model, tokenizer, name=path.name, prompt_format=PromptFormat.load(path))

    @property
    def model(self) -> Any:
        """The torch model (``transformers`` ``PreTrainedModel``)."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The matching tokenizer."""
        return self._tokenizer

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self._model.parameters()).device

    def _encode(self, texts: Sequence[str], side: str, reserve: int = 0) -> dict[str, torch.Tensor]:
        """Tokenize and pad ``texts``; a row longer than the model's positions (less ``reserve``) keeps its end.

        Without the cut an over-long prompt (a 2,000-character question) indexes past the position
        embeddings deep inside the model. The end holds the question and the answer cue, so it is kept.
        """
        self._tokenizer.padding_side = side
        batch = self._tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        limit = context_length(self._model)
        if limit is not None and batch["input_ids"].shape[1] > limit - reserve:
            batch = self._cut_to(texts, max(1, limit - reserve))
        return {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    def _cut_to(self, texts: Sequence[str], keep: int) -> Any:
        ids = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        logger.warning(
            "%d of %d inputs exceed %d tokens; their first tokens are cut",
            sum(len(r) > keep for r in ids),
            len(ids),
            keep,
        )
        return self._tokenizer.pad({"input_ids": [row[-keep:] for row in ids]}, return_tensors="pt")

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24, batch_size: int = 64) -> list[Generation]:
        """Greedy completions, cut at the first newline or end of text; confidence of the first token.

        Prompts of similar length run together (:func:`length_chunks`), in order of answers as given. Plain
        greedy search runs in :func:`tools.lm._greedy.greedy_batches` (finished rows leave their batch; a lean
        model decodes up to ``_CHUNKS_IN_STEP`` chunks in step, so a long list never holds every chunk's KV cache
        at once); anything else in ``transformers``' ``generate``, a chunk at a time.
        """
        if not plain_greedy(self._model):
            out: list[Generation | None] = [None] * len(prompts)
            for chunk in length_chunks(prompts, batch_size):
                for i, gen in zip(
                    chunk, self._generate_batch([prompts[i] for i in chunk], max_new_tokens), strict=True
                ):
                    out[i] = gen
            return [g for g in out if g is not None]
        return self._greedy(prompts, max_new_tokens, batch_size)

    @torch.no_grad()
    def generate_traced(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 24,
        *,
        answers_of: Collection[str] = (),
        prefixes: Sequence[tuple[str, str]] = (),
        answers_after: Collection[tuple[str, str]] = (),
        batch_size: int = 64,
    ) -> tuple[list[Generation], ScoreBook]:
        """:meth:`generate` (the same completions), and a :class:`ScoreBook` that answers ``score`` rows from
        what this pass read instead of a second forward pass over the same tokens.

        Args:
            prompts, max_new_tokens, batch_size: as :meth:`generate`.
            answers_of: prompts whose answer the caller will score after them (``(prompt, " " + answer)``):
                their answer tokens' log-probabilities are kept.
            prefixes: rows ``(prompt, continuation)`` whose text ``prompt + continuation`` begins one of
                ``prompts``: the prefill keeps the final hidden states of their continuation's positions
                (a model with ``keeps_hidden``, the lean modules; on others the book does not answer them).
            answers_after: pairs ``(prompt, leader)`` of ``prompts``: ``leader``'s answer is scored after
                ``prompt`` as it is decoded (a copy of ``prompt``'s row fed ``leader``'s tokens in the same
                decoding steps) when the two prompts fall in one length chunk.

        A model :meth:`generate` leaves to ``transformers``' ``generate`` gets an empty book.
        """
        book = ScoreBook(self._tokenizer, getattr(self._model, "head", None))
        if not plain_greedy(self._model):
            return self.generate(prompts, max_new_tokens, batch_size), book
        keep = set(answers_of)
        wanted = list(prefixes) if getattr(self._model, "keeps_hidden", False) else []
        return self._greedy(prompts, max_new_tokens, batch_size, book, keep, wanted, answers_after), book

    def _greedy(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        batch_size: int,
        book: ScoreBook | None = None,
        answers_of: Collection[str] = (),
        prefixes: Sequence[tuple[str, str]] = (),
        answers_after: Collection[tuple[str, str]] = (),
    ) -> list[Generation]:
        """Plain greedy search through :func:`greedy_batches` (see :meth:`generate`), recording into ``book``
        what :meth:`generate_traced` asked for."""
        out: list[Generation | None] = [None] * len(prompts)
        chunks = length_chunks(prompts, batch_size)
        hosts = prefix_hosts(prompts, prefixes)
        for at in range(0, len(chunks), _CHUNKS_IN_STEP):  # a bounded window: their caches live together
            window = chunks[at : at + _CHUNKS_IN_STEP]
            batches = [self._encode([prompts[i] for i in c], side="left", reserve=max_new_tokens) for c in window]
            groups = [(b["input_ids"], b["attention_mask"]) for b in batches]
            plans = None
            if book is not None:
                plans = [
                    TracePlan.of(self._tokenizer, prompts, c, b, answers_of, hosts, answers_after)
                    for c, b in zip(window, batches, strict=True)
                ]
            traces = [p.trace for p in plans] if plans is not None else None
            decoded = greedy_batches(self._model, groups, max_new_tokens, self._stop_ids, traces)
            for n, (chunk, rows) in enumerate(zip(window, decoded, strict=True)):
                for i, gen in zip(chunk, self._generations(rows.tokens, rows.first), strict=True):
                    out[i] = gen
                if plans is not None and book is not None:
                    plans[n].record(book, rows)
        return [g for g in out if g is not None]

    def _generate_batch(self, prompts: Sequence[str], max_new_tokens: int) -> list[Generation]:
        """``transformers``' ``generate`` on one batch (a model :func:`plain_greedy` does not reproduce)."""
        batch = self._encode(prompts, side="left", reserve=max_new_tokens)
        result = self._model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self._tokenizer.pad_token_id,
            eos_token_id=self._stop_ids,
            output_scores=True,
            return_dict_in_generate=True,
        )
        new_tokens = result.sequences[:, batch["input_ids"].shape[1] :]
        return self._generations(new_tokens, torch.softmax(result.scores[0].float(), dim=-1))  # (B, V)

    def _generations(self, new_tokens: Any, first: torch.Tensor) -> list[Generation]:
        """Texts of each row's ``new_tokens`` (cut at the first newline) with the first step's top-2 from
        ``first`` ``(B, V)`` (its softmax)."""
        top2 = first.topk(2, dim=-1).values
        texts = self._tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        gens = []
        for i, text in enumerate(texts):
            text = text.split("\n", 1)[0].strip()
            gens.append(
                Generation(text=text, first_token_prob=float(top2[i, 0]), margin=float(top2[i, 0] - top2[i, 1]))
            )
        return gens

    @torch.no_grad()
    def score(self, prompts: Sequence[str], continuations: Sequence[str], batch_size: int = 64) -> list[Score]:
        """Sum of log-probabilities of each continuation's tokens after its prompt (teacher-forced)."""
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations must have the same length")
        if any(not p for p in prompts):  # the continuation's first token would have nothing to follow
            raise InvalidInputError("score needs a non-empty prompt before each continuation")
        out: list[Score | None] = [None] * len(prompts)
        rows = [p + c for p, c in zip(prompts, continuations, strict=True)]
        for chunk in length_chunks(rows, batch_size):
            got = self._score_batch([prompts[i] for i in chunk], [continuations[i] for i in chunk])
            for i, sc in zip(chunk, got, strict=True):
                out[i] = sc
        return [sc for sc in out if sc is not None]

    def _score_batch(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Score]:
        tok = self._tokenizer
        rows = [p + c for p, c in zip(prompts, continuations, strict=True)]
        row_lens = [len(ids) for ids in tok(rows, add_special_tokens=False)["input_ids"]]
        batch = self._encode(rows, side="right")
        kept = batch["input_ids"].shape[1]
        # a row cut at the front (over-long prompt) loses that many prompt tokens; the continuation must survive
        cuts = [max(0, n - kept) for n in row_lens]
        prompt_lens = [
            len(tok(p, add_special_tokens=False)["input_ids"]) - c for p, c in zip(prompts, cuts, strict=True)
        ]
        if any(c > 0 and plen < 1 for c, plen in zip(cuts, prompt_lens, strict=True)):
            raise InvalidInputError(f"a continuation does not fit the model's {kept} positions after its prompt")
        spans = [(plen - 1, int(batch["attention_mask"][i].sum()) - 1) for i, plen in enumerate(prompt_lens)]
        token_lp = self._span_logprobs(batch, spans)
        return [Score(logprob=float(lp.sum()), n_tokens=int(lp.numel())) for lp in token_lp]

    def _span_logprobs(self, batch: dict[str, torch.Tensor], spans: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        """Per row ``i`` of a right-padded ``batch``, the log-probabilities of its tokens ``start + 1 .. end``
        predicted at positions ``spans[i] = (start, end)`` (end excluded).

        A model taking ``logits_at`` (the lean modules: ``selects_logits``) runs its output head and softmax
        on those positions only; any other gives every position's logits.
        """
        ids = batch["input_ids"]
        if getattr(self._model, "selects_logits", False):
            at = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
            for i, (start, end) in enumerate(spans):
                at[i, start:end] = True
            logprobs = torch.log_softmax(self._model(**batch, logits_at=at).logits.float(), dim=-1)  # (n, V)
            targets = ids.roll(-1, dims=1)[at]  # the token after each position (never past a row's end)
            token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            return list(token_lp.split([max(0, end - start) for start, end in spans]))
        logits = self._model(**batch).logits.float()  # (B, T, V)
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        all_lp = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
        return [all_lp[i, start:end] for i, (start, end) in enumerate(spans)]

    @torch.no_grad()
    def next_token_distribution(self, prompt: str, top_k: int = 10) -> list[TokenProb]:
        """The ``top_k`` most probable next tokens after ``prompt``."""
        batch = self._encode([prompt], side="left")
        probs = torch.softmax(self._model(**batch).logits[0, -1].float(), dim=-1)
        values, ids = probs.topk(min(top_k, probs.numel()))
        return [TokenProb(self._tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)]


def _check_vocab(model: Any, tokenizer: Any, name: str) -> None:
    n_embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_embeddings:
        raise TokenizerMismatchError(
            f"{name}: tokenizer has {len(tokenizer)} tokens but the model has only {n_embeddings} embeddings"
        )
