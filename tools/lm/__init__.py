"""The language-model layer: one protocol, a local HF backend and an OpenAI-compatible backend."""

from tools.lm._format import PromptFormat
from tools.lm._protocol import Generation, LanguageModel, LocalLanguageModel, Score, TokenProb

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
    # backends import torch / httpx; load them only when asked for
    if name == "HFLanguageModel":
        from tools.lm._hf import HFLanguageModel

        return HFLanguageModel
    if name == "OpenAIChatModel":
        from tools.lm._openai import OpenAIChatModel

        return OpenAIChatModel
    raise AttributeError(name)
