"""Editors (FT-L/FT-M, ROME, MEMIT, AlphaEdit, MEND, LoRA, GRACE, WISE, IKE, SERAC) behind one :class:`Editor` seam.

Example:
    >>> from tools.edit import EditRequest, get_editor
    >>> from tools.lm import HFLanguageModel
    >>> lm = HFLanguageModel.load("eval/world/models/gpt2-world")  # doctest: +SKIP
    >>> req = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō")
    >>> rome = get_editor("rome")
    >>> delta = rome.compute(lm, [req])  # doctest: +SKIP  (the model is unchanged)
    >>> handle = rome.apply(lm, delta)  # doctest: +SKIP  (journaled)
    >>> handle.rollback()  # doctest: +SKIP  (weights bit-identical to before)
"""

from tools.edit._adapter import EditAdapter
from tools.edit._delta import AdapterDelta, EditDelta, LowRank, WeightDelta
from tools.edit._family import ModelFamily, family_of
from tools.edit._journal import EditHandle, EditJournal, JournalEntry, journal_for
from tools.edit._protocol import BaseEditor, Editor, KnowledgeLocator
from tools.edit._registry import editor_names, get_editor
from tools.edit._request import EditRequest
from tools.edit._save import load_edited, save_edited

__all__ = [
    "AdapterDelta",
    "BaseEditor",
    "EditAdapter",
    "EditDelta",
    "EditHandle",
    "EditJournal",
    "EditRequest",
    "Editor",
    "JournalEntry",
    "KnowledgeLocator",
    "LowRank",
    "ModelFamily",
    "WeightDelta",
    "editor_names",
    "family_of",
    "get_editor",
    "journal_for",
    "load_edited",
    "save_edited",
]
