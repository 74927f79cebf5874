"""The shared base that ``tools``, ``memory`` and ``kg`` stand on (with ``tools.errors``).

The floor under the three peer packages: the records every layer passes around (``Triple``, ``Scope``), the
SQLite ``Database`` the memory and the graph share, the ``Embedder`` seam, and the validation rules both stores
apply (``unsafe_character``, ``check_time``). Light: no torch, numpy or faiss at import. Nothing here imports
``memory``, ``kg``, the rest of ``tools``, ``agent`` or ``eval`` (``tests/test_package.py`` checks it).
"""

from tools.base._db import Database
from tools.base._embedder import Embedder
from tools.base._records import Scope, Triple
from tools.base._validate import check_time, unsafe_character

__all__ = ["Database", "Embedder", "Scope", "Triple", "check_time", "unsafe_character"]
