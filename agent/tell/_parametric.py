"""Parametric edits of told facts: off, immediate (one edit per tell) or consolidated in batches.

``immediate`` edits the local model right after the memory write, with the configured method (ROME by
default) on a cloze prompt about the subject; ``consolidate`` queues the requests and :meth:`consolidate`
writes a batch into the weights with one MEMIT edit. Every weight change goes through the model's edit
journal (``tools.edit.journal_for``), so rolling an edit back restores the weights exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from agent.tell._patterns import cloze_prompt
from agent.tell._records import Claim
from kg import Schema, normalize_mention
from memory import Triple
from tools.errors import ConfigError, EditError, NotFoundError

if TYPE_CHECKING:
    from tools.edit import Editor, EditRequest
    from tools.lm import LocalLanguageModel

__all__ = ["ParametricEditor", "ParametricMode"]

logger = logging.getLogger(__name__)

ParametricMode = Literal["off", "immediate", "consolidate"]
EditorFactory = Callable[[str], "Editor"]


class ParametricEditor:
    """Writes told facts into a local model's weights, journaled.

    Args:
        mode: ``off``, ``immediate`` or ``consolidate``.
        schema: relation templates for the cloze prompts.
        lm: the local model (required unless ``mode`` is ``off``).
        editor_factory: method name -> editor (``tools.edit.get_editor`` with a statistics corpus).
        method: the editor of ``immediate`` mode.
        consolidate_method: the editor of :meth:`consolidate` batches.

    Raises:
        ConfigError: a mode other than ``off`` without a model or an editor factory.
    """

    def __init__(
        self,
        mode: ParametricMode,
        schema: Schema,
        lm: LocalLanguageModel | None = None,
        editor_factory: EditorFactory | None = None,
        *,
        method: str = "rome",
        consolidate_method: str = "memit",
    ) -> None:
        if mode not in ("off", "immediate", "consolidate"):
            raise ConfigError(f"parametric mode must be off, immediate or consolidate, got {mode!r}")
        if mode != "off" and (lm is None or editor_factory is None):
            raise ConfigError(f"parametric mode {mode!r} needs a local language model and an editor")
        self.mode: ParametricMode = mode
        self._schema = schema
        self._lm = lm
        self._factory = editor_factory
        self._method = method
        self._consolidate_method = consolidate_method
        self._editors: dict[str, Editor] = {}

    @property
    def lm(self) -> LocalLanguageModel | None:
        return self._lm

    def requests(self, claims: Sequence[Claim], superseded: Sequence[Triple]) -> list[EditRequest]:
        """One edit request per claim: a cloze about the subject, completed by the new object."""
        from tools.edit import EditRequest

        out = []
        for claim in claims:
            t = claim.triple
            old = next((s.object for s in superseded if s.relation == t.relation and _same(s.subject, t.subject)), None)
            prompt = cloze_prompt(self._schema, t.relation, t.subject, claim.template)
            target_old = old if old is not None and not _same(old, t.object) else None
            out.append(EditRequest(prompt, t.subject, t.object, target_old, t.relation))
        return out

    def apply(self, requests: Sequence[EditRequest], method: str | None = None) -> str:
        """Compute and apply one edit of ``requests``; returns its journal id.

        Raises:
            EditError: the edit could not be computed or applied (the model is unchanged).
        """
        lm = self._require_lm()
        editor = self._editor(method or self._method)
        try:
            delta = editor.compute(lm, list(requests))
            handle = editor.apply(lm, delta)
        except EditError:
            raise
        except (RuntimeError, ValueError) as exc:  # torch numerics and shape errors surface as these
            raise EditError(f"the parametric {editor.name} edit failed: {exc}") from exc
        logger.info("parametric %s edit %s of %d fact(s)", editor.name, handle.edit_id, len(requests))
        return handle.edit_id

    def apply_batch(self, requests: Sequence[EditRequest]) -> str:
        """One consolidation batch (the consolidation method)."""
        return self.apply(requests, self._consolidate_method)

    def rollback(self, journal_id: str) -> bool:
        """Undo one journaled weight edit; ``False`` when the model's journal does not hold it (e.g. reloaded)."""
        from tools.edit import journal_for

        if self._lm is None:
            logger.warning("parametric edit %s not undone: no local model is loaded", journal_id)
            return False
        try:
            journal_for(self._lm.model).rollback(journal_id)
        except NotFoundError:
            logger.warning(
                "parametric edit %s is not in the model's journal (model reloaded?): nothing to undo", journal_id
            )
            return False
        return True

    def _require_lm(self) -> LocalLanguageModel:
        if self._lm is None:
            raise ConfigError("no local language model for parametric edits")
        return self._lm

    def _editor(self, method: str) -> Editor:
        if self._factory is None:
            raise ConfigError("no editor factory for parametric edits")
        if method not in self._editors:
            self._editors[method] = self._factory(method)
        return self._editors[method]


def _same(a: str, b: str) -> bool:
    return normalize_mention(a) == normalize_mention(b)
