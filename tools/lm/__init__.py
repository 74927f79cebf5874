"""The language-model layer: one protocol, a local HF backend and OpenAI-compatible backends."""

from typing import TYPE_CHECKING

from tools.lm._context import context_length
from tools.lm._format import PromptFormat
from tools.lm._protocol import Generation, LanguageModel, LocalLanguageModel, Score, TokenProb, is_local_model

if TYPE_CHECKING:  # the backends import torch / httpx: loaded on first use, below
    from tools.lm._hf import HFLanguageModel, check_model_dir
    from tools.lm._lean_lm import LeanLanguageModel
    from tools.lm._openai import OpenAIChatModel
    from tools.lm._scorebook import ScoreBook
    from tools.lm._served import ServedLanguageModel

__all__ = [
    "Generation",
    "HFLanguageModel",
    "LanguageModel",
    "LeanLanguageModel",
    "LocalLanguageModel",
    "OpenAIChatModel",
    "PromptFormat",
    "Score",
    "ScoreBook",
    "ServedLanguageModel",
    "TokenProb",
    "check_model_dir",
    "context_length",
    "is_local_model",
]


def __getattr__(name: str) -> object:
    if name == "ScoreBook":
        from tools.lm._scorebook import ScoreBook

        return ScoreBook
    if name == "HFLanguageModel":
        from tools.lm._hf import HFLanguageModel

        return HFLanguageModel
    if name == "LeanLanguageModel":
        from tools.lm._lean_lm import LeanLanguageModel

        return LeanLanguageModel
    if name == "check_model_dir":
        from tools.lm._hf import check_model_dir

        return check_model_dir
    if name == "OpenAIChatModel":
        from tools.lm._openai import OpenAIChatModel

        return OpenAIChatModel
    if name == "ServedLanguageModel":
        from tools.lm._served import ServedLanguageModel

        return ServedLanguageModel
    raise AttributeError(name)
