"""Parametric tools on a torch model: the language-model layer and (later) editors.

Kept light: importing ``tools`` does not import torch; import ``tools.lm`` for the model layer.
"""

from tools.errors import FactagentError

__all__ = ["FactagentError"]
