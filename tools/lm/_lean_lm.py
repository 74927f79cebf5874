"""The answering model on the lean modules (:mod:`tools.lean`), turning into the ``transformers`` one on demand.

:class:`LeanLanguageModel` is an :class:`HFLanguageModel` whose torch model and tokenizer are the lean ones
until something asks for :attr:`~LeanLanguageModel.model` or :attr:`~LeanLanguageModel.tokenizer`: editors
(ROME, MEMIT, ...), their journals and rollbacks, circuits and detox reach the weights through those two, so
the first such access loads the ``transformers`` model from the same directory on the same device and dtype,
and from then on every call runs on it (an edit applied to it is what later answers see). The lean modules'
answers, scores and next-token distributions are ``transformers``': same parameters, same arithmetic
(``tests/tools/lean``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import torch

from tools.lm._format import PromptFormat
from tools.lm._greedy import plain_greedy
from tools.lm._hf import HFLanguageModel, check_model_dir, pick_device, pick_dtype

__all__ = ["LeanLanguageModel"]

logger = logging.getLogger(__name__)


class LeanLanguageModel(HFLanguageModel):
    """A local causal LM answered by a lean module; ``transformers``' model is loaded when first needed.

    Example:
        >>> lm = LeanLanguageModel.load("eval/world/models/gpt2-world")  # doctest: +SKIP
        >>> lm.runtime, lm.generate([lm.prompt_format.question("Who is the CEO of Nokia?")])[0].text  # doctest: +SKIP
        ('lean', ...)
    """

    def __init__(
        self, model: Any, tokenizer: Any, name: str, path: Path, prompt_format: PromptFormat | None = None
    ) -> None:
        super().__init__(model, tokenizer, name, prompt_format)
        self._path = path
        self._swap = threading.Lock()
        self.runtime = "lean"

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> LeanLanguageModel:
        """Load ``path``'s lean module (see :func:`tools.lean.lean_causal_reason` for which directories can).

        Raises:
            ModelLoadError: the directory holds no model, or none the lean modules run (or a greedy
                ``generate`` they would not reproduce: a generation config asking for logits processing).
            TokenizerMismatchError: the tokenizer's vocabulary exceeds the model's embeddings.
        """
        from tools.errors import ModelLoadError
        from tools.lean import load_causal_lm

        path = Path(path)
        check_model_dir(path)
        dev = torch.device(device) if device is not None else pick_device()
        model, tokenizer = load_causal_lm(path, dev, dtype or pick_dtype(dev))
        if not plain_greedy(model):
            raise ModelLoadError(f"{path}: its generation config asks for more than greedy search")
        logger.info("loaded %s on %s (%s, lean: no transformers model code)", path, dev, next(model.parameters()).dtype)
        return cls(model, tokenizer, name=path.name, path=path, prompt_format=PromptFormat.load(path))

    @property
    def model(self) -> Any:
        """The ``transformers`` model (loaded now if the lean module still answers): editors change its weights."""
        self._to_transformers()
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The ``transformers`` tokenizer matching :attr:`model` (loading the model too, as :attr:`model`)."""
        self._to_transformers()
        return self._tokenizer

    def _to_transformers(self) -> None:
        """Replace the lean module and tokenizer with ``transformers``' (once; later calls answer from them)."""
        with self._swap:
            if self.runtime == "transformers":
                return
            lean = self._model
            param = next(lean.parameters())
            hf = HFLanguageModel.load(self._path, device=param.device, dtype=param.dtype)
            self._model, self._tokenizer, self._stop_ids = hf._model, hf._tokenizer, hf._stop_ids
            self.runtime = "transformers"
            logger.info("%s: loaded transformers' model (its weights or modules were asked for)", self.name)
