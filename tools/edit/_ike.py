"""IKE (Zheng et al., 2023, "Can We Edit Factual Knowledge by In-Context Learning?"): edits as demonstrations.

No weight changes: each request becomes a *copy* demonstration, ``"New Fact: {prompt} {target}\\n{prompt}
{target}.\\n"`` (the fact stated, then the prompt answered with it), kept in a
:class:`~tools.edit._context.ContextAdapter` around the model's inner transformer. At inference the
demonstrations that concern an input are retrieved by similarity (its subject's tokens occur in the input;
ranked by the cosine of mean input embeddings) and prepended; the prompt's own answer then follows the
demonstration as in-context learning. Rolling an edit back removes its demonstration.

Deviations from the paper, and why: IKE retrieves its ``k`` demonstrations by sentence-embedding similarity
from a pool of copy, update (paraphrase) and retain (unrelated prompt, old answer) demonstrations built from
*training* facts, and always prepends them with the new fact. Here a request carries no paraphrases or
unrelated prompts, so only the copy demonstration exists, and an input no demonstration concerns gets none
(the retain demonstrations' job, done by the trigger: the model there is exactly the unedited one). Measured
on the reference models with the demonstration prepended by hand to the first 20 world edit prompts, greedy:
the copy format above gives the new object 17/20 (GPT-2) and 18/20 (LLaMA), as does ``"New Fact: ...\\nPrompt:
..."``; the fact stated twice without ``"New Fact:"`` gave 18/20 and 13/20.

``edit-bench --method ike --T 1,10,100`` (sequential, scored after all T; reliability / generalization /
locality, greedy, teacher-forced in brackets), T=100: GPT-2 0.97 / 0.955 / 1.00 (0.994 / 0.981 / 1.00), LLaMA
0.96 / 0.884 / 1.00 (0.992 / 0.958 / 1.00), about 0.01-0.03 s per edit. The misses are edits whose new object
begins like a name the model knows (LLaMA: ``"Benoît Coquart"`` comes out ``"Benoît Potier"``); no template
tried (a question form, the target repeated, the demonstration twice) moved LLaMA past 37 of 40.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from tools.edit._adapter import EditAdapter
from tools.edit._delta import AdapterDelta
from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._protocol import BaseEditor
from tools.edit._request import EditRequest
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["IKEEditor", "IKEHyperParams", "demonstration_payload", "inner_module_path", "input_embedding"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IKEHyperParams:
    """Settings of IKE."""

    layers: tuple[int, ...] = ()  # none: IKE changes no layer (checked like every editor's, so () or valid ones)
    template: str = "New Fact: {prompt} {target}\n{prompt} {target}.\n"  # the copy demonstration
    top_k: int = 2  # at most this many demonstrations prepended to one input

    def __post_init__(self) -> None:
        if "{prompt}" not in self.template or "{target}" not in self.template:
            raise InvalidEditError("ike: template must contain {prompt} and {target}")
        if self.top_k < 1:
            raise InvalidEditError(f"ike: top_k must be >= 1, got {self.top_k}")

    @classmethod
    def for_family(cls, family: ModelFamily) -> IKEHyperParams:
        """The same for every family (no layer is edited)."""
        return cls()


def _ids(tokenizer: Any, text: str) -> torch.Tensor:
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)


def demonstration_payload(model: LocalLanguageModel, texts: list[str], requests: tuple[EditRequest, ...]) -> dict:
    """The context adapter's payload: one demonstration ``texts[i]`` per request, keyed on its prompt.

    Triggers are the subject's tokens with and without a leading space (how it is tokenised mid-sentence and
    at the start); the key is the mean input embedding of the prompt's tokens.
    """
    tok = model.tokenizer
    embed = input_embedding(model)
    tokens, triggers, keys = [], [], []
    for text, req in zip(texts, requests, strict=True):
        tokens.append(_ids(tok, text))
        variants = {tuple(_ids(tok, req.subject).tolist()), tuple(_ids(tok, " " + req.subject).tolist())}
        triggers.append([torch.tensor(v, dtype=torch.long) for v in sorted(variants) if v])
        with torch.no_grad():
            prompt = _ids(tok, req.prompt).to(embed.weight.device)
            keys.append(embed(prompt).float().mean(dim=0).cpu())
    return {"tokens": tokens, "triggers": triggers, "key": keys}


def input_embedding(model: LocalLanguageModel) -> Any:
    """The model's input embedding, also when its transformer is wrapped in an adapter."""
    inner = inner_module_path(model)
    module = get_module(model.model, inner)
    if isinstance(module, EditAdapter):
        module = module.base
    return get_module(module, _embed_path(model, inner))


def _embed_path(model: LocalLanguageModel, inner: str) -> str:
    embed = family_of(model.model).embed
    if not embed.startswith(inner + "."):
        raise InvalidEditError(f"the input embedding {embed!r} is not inside {inner!r}")
    return embed[len(inner) + 1 :]


def inner_module_path(model: LocalLanguageModel) -> str:
    """Where the causal LM keeps its transformer (``transformer`` for GPT-2, ``model`` for LLaMA)."""
    prefix = getattr(model.model, "base_model_prefix", "")
    if not prefix or not hasattr(model.model, prefix):
        raise InvalidEditError(f"the model {type(model.model).__name__} has no inner transformer to wrap")
    return str(prefix)


class IKEEditor(BaseEditor[IKEHyperParams]):
    """In-context editing (see the module docstring).

    Example:
        >>> from tools.edit import get_editor
        >>> ike = get_editor("ike")
        >>> handle = ike.edit(lm, [EditRequest("Alibaba's CEO is", "Alibaba", "Jane Roe")])  # doctest: +SKIP
    """

    name: ClassVar[str] = "ike"
    hparams_class: ClassVar[type] = IKEHyperParams

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: IKEHyperParams
    ) -> AdapterDelta:
        texts = [hparams.template.format(prompt=r.prompt, target=r.target_new) for r in requests]
        pad = model.tokenizer.pad_token_id
        inner = inner_module_path(model)
        embed_path = _embed_path(model, inner)
        return AdapterDelta(
            method=self.name,
            requests=requests,
            adapter="context",
            module_path=inner,
            config={"top_k": hparams.top_k, "pad_id": int(pad) if pad is not None else 0, "embed": embed_path},
            payload=demonstration_payload(model, texts, requests),
            info={"demonstrations": len(texts)},
        )
