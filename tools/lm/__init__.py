"""The language-model layer: one protocol, a local HF backend and an OpenAI-compatible backend."""

from typing import TYPE_CHECKING

from tools.lm._format import PromptFormat
from tools.lm._protocol import Generation, LanguageModel, LocalLanguageModel, Score, TokenProb

if TYPE_CHECKING:  # the backends import torch / httpx: loaded on first use, below
    from tools.lm._hf import HFLanguageModel
    from tools.lm._openai import OpenAIChatModel

__all__ = [
    "Generation",
    "HFLanguageModel",
    "LanguageModel",
    "LocalLanguageModel",
    "OpenAIChatModel",
    "PromptFormat",
    "Score",
    "TokenProb",
]


def __getattr__(name: str) -> object:
    if name == "HFLanguageModel":
        from tools.lm._hf import HFLanguageModel

        return HFLanguageModel
    if name == "OpenAIChatModel":
        from tools.lm._openai import OpenAIChatModel

        return OpenAIChatModel
    raise AttributeError(name)
