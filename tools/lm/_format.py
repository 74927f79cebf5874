"""How a model wants its prompts: closed-book questions, and questions over context sentences.

The format travels with a model directory as ``factagent.json`` so that every part (agent, evaluator,
editors) prompts a model the way it was trained. Models without that file get the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.errors import ModelLoadError

FORMAT_FILE = "factagent.json"


@dataclass(frozen=True)
class PromptFormat:
    """Prompt templates of a model (``{question}``, ``{context}``, ``{cloze}`` are the slots)."""

    question_template: str = "Q: {question}\nA:"
    context_template: str = "Context: {context}\nQ: {question}\nA:"
    cloze_context_template: str = "Context: {context}\n{cloze}"

    def question(self, question: str) -> str:
        """A closed-book question prompt."""
        return self.question_template.format(question=question)

    def with_context(self, sentences: Sequence[str], question: str) -> str:
        """A question prompt with context sentences before it (retrieval-augmented answering)."""
        return self.context_template.format(context=" ".join(sentences), question=question)

    def cloze_with_context(self, sentences: Sequence[str], cloze: str) -> str:
        """A cloze prompt with context sentences before it."""
        return self.cloze_context_template.format(context=" ".join(sentences), cloze=cloze)

    def save(self, model_dir: Path) -> None:
        """Write ``factagent.json`` into ``model_dir``."""
        (model_dir / FORMAT_FILE).write_text(
            json.dumps({"prompt_format": asdict(self)}, indent=2) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, model_dir: Path) -> PromptFormat:
        """Read ``factagent.json`` from ``model_dir``; defaults when the file is absent."""
        path = model_dir / FORMAT_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))["prompt_format"]
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{path}: invalid prompt format ({exc})") from exc
