"""Save an edited model — weights, GRACE/WISE adapters and the journal — to a directory, and load it back.

Layout of the directory (a standard HF model directory plus three factagent files)::

    config.json, model.safetensors, tokenizer files, factagent.json   the edited base weights (adapters removed)
    adapters.json + adapters.safetensors                              each adapter's kind, metadata and tensors
    journal.json + journal.safetensors                                entries, their updates, original weights

Loading gives identical outputs, and the journal still rolls back: the original values of edited parameters
travel with it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tools.edit._adapter import EditAdapter
from tools.edit._delta import LowRank, Update
from tools.edit._family import set_module
from tools.edit._journal import JournalEntry, journal_for
from tools.edit._registry import adapter_class
from tools.edit._request import EditRequest
from tools.errors import ModelLoadError
from tools.lm._hf import HFLanguageModel

__all__ = ["load_edited", "save_edited"]
logger = logging.getLogger(__name__)
JOURNAL_FORMAT = 1


def save_edited(lm: HFLanguageModel, out_dir: str | Path) -> Path:
    """Write ``lm`` with its adapters and journal to ``out_dir`` (created; files replaced)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = lm.model
    journal = journal_for(model)
    adapters = journal.adapters()
    try:  # the base weights are saved with the original modules in place of the adapters
        for path, adapter in adapters.items():
            set_module(model, path, adapter.base)
        model.save_pretrained(out, safe_serialization=True)
    finally:
        for path, adapter in adapters.items():
            set_module(model, path, adapter)
    lm.tokenizer.save_pretrained(out)
    lm.prompt_format.save(out)

    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for path, adapter in adapters.items():
        a_tensors, a_meta = adapter.export()
        meta[path] = {"kind": adapter.kind, "meta": a_meta}
        tensors.update({f"{path}::{k}": v.detach().contiguous().cpu() for k, v in a_tensors.items()})
    (out / "adapters.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    save_file(tensors, str(out / "adapters.safetensors"))

    j_tensors: dict[str, torch.Tensor] = {f"orig::{k}": v.contiguous().cpu() for k, v in journal.originals.items()}
    records = []
    for entry in journal.entries:
        kinds = {}
        for name, update in entry.updates.items():
            if isinstance(update, LowRank):
                j_tensors[f"delta::{entry.id}::{name}::left"] = update.left.contiguous().cpu()
                j_tensors[f"delta::{entry.id}::{name}::right"] = update.right.contiguous().cpu()
                kinds[name] = "low_rank"
            else:
                j_tensors[f"delta::{entry.id}::{name}::dense"] = update.contiguous().cpu()
                kinds[name] = "dense"
        records.append(
            {
                "id": entry.id,
                "method": entry.method,
                "requests": [r.to_json() for r in entry.requests],
                "kind": entry.kind,
                "created_at": entry.created_at,
                "updates": kinds,
                "module_path": entry.module_path,
                "adapter": entry.adapter,
            }
        )
    (out / "journal.json").write_text(
        json.dumps({"format": JOURNAL_FORMAT, "entries": records}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    save_file(j_tensors, str(out / "journal.safetensors"))
    logger.info("saved edited model with %d journal entries to %s", len(records), out)
    return out


def load_edited(path: str | Path, device: str | torch.device | None = None) -> HFLanguageModel:
    """Load a directory written by :func:`save_edited` (a plain HF directory loads with an empty journal).

    Raises:
        ModelLoadError: the directory is not a model, or its adapter/journal files are unreadable.
    """
    path = Path(path)
    lm = HFLanguageModel.load(path, device=device)
    model = lm.model
    dev = next(model.parameters()).device
    try:
        if (path / "adapters.json").is_file():
            meta = json.loads((path / "adapters.json").read_text(encoding="utf-8"))
            tensors = load_file(str(path / "adapters.safetensors"), device=str(dev))
            for mod_path, spec in meta.items():
                prefix = f"{mod_path}::"
                own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                cls = adapter_class(spec["kind"])
                adapter: EditAdapter = cls.restore(model.get_submodule(mod_path), own, spec["meta"])
                set_module(model, mod_path, adapter)
                adapter.attach(model)
        if (path / "journal.json").is_file():
            data = json.loads((path / "journal.json").read_text(encoding="utf-8"))
            tensors = load_file(str(path / "journal.safetensors"), device=str(dev))
            originals = {k[len("orig::") :]: v for k, v in tensors.items() if k.startswith("orig::")}
            entries = [_entry(rec, tensors) for rec in data["entries"]]
            journal_for(model).restore_entries(entries, originals)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"cannot load the edits saved in {path}: {exc}") from exc
    return lm


def _entry(rec: dict[str, Any], tensors: dict[str, torch.Tensor]) -> JournalEntry:
    updates: dict[str, Update] = {}
    for name, kind in rec["updates"].items():
        key = f"delta::{rec['id']}::{name}"
        if kind == "low_rank":
            updates[name] = LowRank(tensors[f"{key}::left"], tensors[f"{key}::right"])
        else:
            updates[name] = tensors[f"{key}::dense"]
    return JournalEntry(
        id=rec["id"],
        method=rec["method"],
        requests=tuple(EditRequest.from_json(r) for r in rec["requests"]),
        kind=rec["kind"],
        created_at=float(rec["created_at"]),
        updates=updates,
        module_path=rec["module_path"],
        adapter=rec["adapter"],
    )
