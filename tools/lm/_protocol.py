"""The language-model seam: what every backend offers, and what local backends add for editors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

from tools.lm._format import PromptFormat

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TokenProb:
    """A candidate next token and its probability."""

    token: str
    prob: float


@dataclass(frozen=True)
class Generation:
    """A greedy completion and the model's confidence in its first token.

    ``first_token_prob`` is the probability of the chosen first token; ``margin`` its lead over the runner-up
    (both ``None`` when the backend does not expose probabilities).
    """

    text: str
    first_token_prob: float | None = None
    margin: float | None = None


@dataclass(frozen=True)
class Score:
    """Teacher-forced log-probability of a continuation given its prompt (natural log)."""

    logprob: float
    n_tokens: int

    @property
    def mean_logprob(self) -> float:
        """Per-token average, comparable across continuations of different lengths."""
        return self.logprob / max(1, self.n_tokens)


@runtime_checkable
class LanguageModel(Protocol):
    """Anything that answers prompts: a local HF model or an OpenAI-compatible endpoint.

    A backend may also set ``one_request_per_prompt = True`` (a served model): each prompt then costs a
    request of its own, so callers gain by asking fewer prompts in more calls (the agent's signal
    collector asks in stages); without it a call costs about one batch whatever its prompts.
    """

    name: str
    prompt_format: PromptFormat

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        """Greedy completions, one per prompt, cut at the first newline or end of text."""
        ...


@runtime_checkable
class LocalLanguageModel(LanguageModel, Protocol):
    """A model whose weights are here: scoring, next-token distributions, and the torch objects for editors."""

    @property
    def model(self) -> torch.nn.Module:
        """The torch causal LM (editors change its weights)."""
        ...

    @property
    def tokenizer(self) -> Any:
        """The HF tokenizer matching :attr:`model`."""
        ...

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Score]:
        """Teacher-forced log-probability of each continuation after its prompt."""
        ...

    def next_token_distribution(self, prompt: str, top_k: int = 10) -> list[TokenProb]:
        """The ``top_k`` most probable next tokens after ``prompt``, most probable first."""
        ...


def is_local_model(lm: object) -> TypeGuard[LocalLanguageModel]:
    """``isinstance(lm, LocalLanguageModel)``, answered from the class where it says so (``local_weights = True``:
    :class:`HFLanguageModel` and its subclasses) without reading ``lm``'s members.

    Python 3.11's protocol check reads every member, and a lean model's :attr:`~LocalLanguageModel.model` loads
    ``transformers``' model (:class:`tools.lm.LeanLanguageModel`): asking whether a model is local must not.
    """
    if getattr(type(lm), "local_weights", False):
        return True
    return isinstance(lm, LocalLanguageModel)
