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

import importlib
from typing import TYPE_CHECKING

from tools.edit._adapter import EditAdapter
from tools.edit._delta import AdapterDelta, EditDelta, EditGram, LowRank, WeightDelta
from tools.edit._family import ModelFamily, family_of
from tools.edit._journal import EditHandle, EditJournal, JournalEntry, journal_for
from tools.edit._protocol import BaseEditor, Editor, KnowledgeLocator
from tools.edit._registry import editor_names, get_editor
from tools.edit._request import EditRequest, target_text
from tools.edit._save import load_edited, save_edited

if TYPE_CHECKING:  # MEND's and SERAC's training sides import torch: loaded on first use, below
    from tools.edit._mend import MENDHyperParams
    from tools.edit._mend_net import MEND_FILE, save_mend
    from tools.edit._mend_train import MendExample, MendTrainConfig, train_mend
    from tools.edit._serac_cf import SERAC_FILE, save_counterfactual
    from tools.edit._serac_train import CounterfactualTrainConfig, train_counterfactual

__all__ = [  # noqa: RUF022 -- plain sorted() order, which tests/test_package.py checks
    "AdapterDelta",
    "BaseEditor",
    "CounterfactualTrainConfig",
    "EditAdapter",
    "EditDelta",
    "EditGram",
    "EditHandle",
    "EditJournal",
    "EditRequest",
    "Editor",
    "JournalEntry",
    "KnowledgeLocator",
    "LowRank",
    "MENDHyperParams",
    "MEND_FILE",
    "MendExample",
    "MendTrainConfig",
    "ModelFamily",
    "SERAC_FILE",
    "WeightDelta",
    "editor_names",
    "family_of",
    "get_editor",
    "journal_for",
    "load_edited",
    "save_counterfactual",
    "save_edited",
    "save_mend",
    "target_text",
    "train_counterfactual",
    "train_mend",
]

# public name -> private module: ``mend-train`` and ``serac-train`` import these without reaching into ``_*``
_LAZY = {
    "CounterfactualTrainConfig": "tools.edit._serac_train",
    "SERAC_FILE": "tools.edit._serac_cf",
    "MEND_FILE": "tools.edit._mend_net",
    "MENDHyperParams": "tools.edit._mend",
    "MendExample": "tools.edit._mend_train",
    "MendTrainConfig": "tools.edit._mend_train",
    "save_mend": "tools.edit._mend_net",
    "save_counterfactual": "tools.edit._serac_cf",
    "train_counterfactual": "tools.edit._serac_train",
    "train_mend": "tools.edit._mend_train",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
