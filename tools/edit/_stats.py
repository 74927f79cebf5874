"""Second-moment statistics of MLP keys (ROME's ``layer_stats``): ``C = E[k k^T]`` over a text corpus.

ROME and MEMIT weigh their updates by the uncentred covariance of the *keys* of the edited MLP output
projection (its input vectors, ``(intermediate,)``), estimated by running the model over plain text. Computing
it costs a pass over the corpus, so results are cached twice:

* on disk under ``cache_dir``, one safetensors file per (model fingerprint, layer, corpus, number of texts);
* in process, so repeated edits in one session do not even reload the file.

The model fingerprint hashes the config and the weights that feed the keys (everything except the blocks
after ``layer``), with the journal's *original* value substituted for every parameter an edit changed: a model
edited through the journal keeps the statistics of the unedited model, as sequential ROME expects, and
statistics computed on an edited model are computed on a copy holding the original weights.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._hooks import Trace
from tools.edit._journal import journal_for
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["SecondMoment", "clear_memo", "corpus_key", "model_fingerprint", "second_moment"]
logger = logging.getLogger(__name__)

_MEMO_SIZE = 32  # statistics kept in process (a 768 x 768 float32 matrix is 2.4 MB)
_MEMO: OrderedDict[str, tuple[torch.Tensor, int]] = OrderedDict()


@dataclass(frozen=True)
class SecondMoment:
    """``E[k k^T]`` of one layer's MLP keys, and where it came from.

    Attributes:
        matrix: ``(intermediate, intermediate)`` float32, on the model's device.
        n_tokens: how many token positions were averaged.
        seconds: wall time of this call (computing, loading, or a memo hit).
        source: ``"computed"``, ``"disk"`` or ``"memory"``.
    """

    matrix: torch.Tensor
    n_tokens: int
    seconds: float
    source: Literal["computed", "disk", "memory"]

    @property
    def from_cache(self) -> bool:
        """True unless the statistics were computed by this call."""
        return self.source != "computed"


def clear_memo() -> None:
    """Forget the in-process statistics (the disk cache stays)."""
    _MEMO.clear()


def _layer_of(name: str, family: ModelFamily) -> int | None:
    """The block index a parameter belongs to, or ``None`` outside the blocks (embeddings, final norm)."""
    prefix = re.escape(family.block.split("{}")[0])
    match = re.match(prefix + r"(\d+)\.", name)
    return int(match.group(1)) if match else None


def model_fingerprint(model: torch.nn.Module, layer: int) -> str:
    """A hex digest of what determines the keys of ``layer``: config and weights up to that block.

    Parameters the journal has edited contribute their original values, so applying or rolling back edits
    never changes the fingerprint. Hashing reads the weights (tens of milliseconds for the reference models).
    """
    family = family_of(model)
    config_obj: Any = model.config
    config = {k: v for k, v in config_obj.to_dict().items() if not k.startswith("_")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    originals = journal_for(model).originals
    for name, param in model.named_parameters():
        block = _layer_of(name, family)
        if block is not None and block > layer:
            continue
        value = originals.get(name, param).detach()
        digest.update(name.encode())
        digest.update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
        digest.update(value.cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def corpus_key(corpus: Sequence[str] | None, corpus_name: str) -> str:
    """The corpus part of a cache key: its name, or a hash of its texts when it has none.

    Raises:
        InvalidEditError: neither a corpus nor a name is given.
    """
    if corpus_name:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", corpus_name)
    if corpus is None:
        raise InvalidEditError(
            "key statistics need a corpus: pass corpus=[sentences, ...] (e.g. the reference world's documents) "
            "or the corpus_name of statistics already cached in cache_dir"
        )
    digest = hashlib.sha256("\x00".join(corpus).encode()).hexdigest()
    return "sha-" + digest[:16]


def second_moment(
    lm: LocalLanguageModel,
    layer: int,
    *,
    corpus: Sequence[str] | None,
    corpus_name: str = "",
    cache_dir: Path | None = None,
    max_texts: int = 100_000,
    batch_size: int = 32,
) -> SecondMoment:
    """``E[k k^T]`` of the keys of ``family.mlp_out`` at ``layer``, over every non-pad token of the corpus.

    The cache key is the model fingerprint, the layer, the corpus (its name, or a hash of the texts used) and
    ``max_texts``: a corpus name must always denote the same texts.

    Args:
        lm: the model (left unchanged; an edited model is measured with its original weights).
        layer: block index.
        corpus: sentences to run the model over (the first ``max_texts`` are used).
        corpus_name: stable name of the corpus for the cache key (a hash of the texts when empty).
        cache_dir: directory of the disk cache (``None``: only the in-process memo).
        max_texts: use the first ``max_texts`` texts; part of the cache key.
        batch_size: texts per forward pass.

    Returns:
        The statistics with timing and provenance.

    Raises:
        InvalidEditError: no corpus and nothing cached, or an empty corpus.
        LayerOutOfRangeError: ``layer`` is not a layer of the model.
    """
    start = time.perf_counter()
    model = lm.model
    family = family_of(model)
    family.path(family.mlp_out, layer)  # range check
    device = next(model.parameters()).device
    texts = list(corpus[:max_texts]) if corpus is not None else None
    fingerprint = model_fingerprint(model, layer)[:20]
    key = f"mom2_{family.name}_{fingerprint}_L{layer}_{corpus_key(texts, corpus_name)}_n{max_texts}"

    if key in _MEMO:
        _MEMO.move_to_end(key)
        matrix, n_tokens = _MEMO[key]
        return SecondMoment(matrix.to(device), n_tokens, time.perf_counter() - start, "memory")
    path = cache_dir / f"{key}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        loaded = load_file(str(path))
        matrix, n_tokens = loaded["mom2"], int(loaded["count"].item())
        _remember(key, matrix, n_tokens)
        logger.info("loaded key statistics of layer %d from %s", layer, path)
        return SecondMoment(matrix.to(device), n_tokens, time.perf_counter() - start, "disk")
    if texts is None:
        raise InvalidEditError(
            f"no key statistics cached for layer {layer} ({key}) and no corpus given: pass corpus=[sentences, ...] "
            "to the editor (e.g. the reference world's documents)"
        )
    if not texts:
        raise InvalidEditError("the statistics corpus is empty")
    matrix, n_tokens = _compute(lm, family, layer, texts, batch_size)
    _remember(key, matrix, n_tokens)
    if path is not None:
        _save_atomic(path, {"mom2": matrix.cpu(), "count": torch.tensor([n_tokens], dtype=torch.int64)})
    seconds = time.perf_counter() - start
    logger.info("computed key statistics of layer %d over %d tokens in %.2fs", layer, n_tokens, seconds)
    return SecondMoment(matrix.to(device), n_tokens, seconds, "computed")


def _remember(key: str, matrix: torch.Tensor, n_tokens: int) -> None:
    _MEMO[key] = (matrix, n_tokens)
    _MEMO.move_to_end(key)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)


def _original_model(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself when unedited, else a deep copy holding the journal's original weights."""
    originals = journal_for(model).originals
    if not originals:
        return model
    clone = copy.deepcopy(model)
    params = dict(clone.named_parameters())
    with torch.no_grad():
        for name, value in originals.items():
            params[name].copy_(value)
    return clone


@torch.no_grad()
def _compute(
    lm: LocalLanguageModel, family: ModelFamily, layer: int, texts: list[str], batch_size: int
) -> tuple[torch.Tensor, int]:
    model = _original_model(lm.model)
    tokenizer = lm.tokenizer
    device = next(model.parameters()).device
    limit = int(getattr(model.config, "max_position_embeddings", 0) or getattr(model.config, "n_positions", 512))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    path = family.mlp_out.format(layer)
    get_module(model, path)
    total = torch.zeros(family.intermediate, family.intermediate, dtype=torch.float64, device=device)
    count = 0
    was_training = model.training
    model.eval()
    try:
        for lo in range(0, len(texts), batch_size):
            rows = [tokenizer(t, add_special_tokens=False)["input_ids"][:limit] for t in texts[lo : lo + batch_size]]
            rows = [r for r in rows if r]
            if not rows:
                continue
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for b, row in enumerate(rows):
                ids[b, : len(row)] = torch.tensor(row)
                mask[b, : len(row)] = 1
            with Trace(model, path, retain_input=True) as trace:
                model(input_ids=ids.to(device), attention_mask=mask.to(device))
            assert trace.input is not None  # the hook ran
            keys = trace.input[mask.to(device).bool()].to(torch.float64)  # (N, intermediate)
            total += keys.T @ keys
            count += int(keys.shape[0])
    finally:
        model.train(was_training)
    if count == 0:
        raise InvalidEditError("the statistics corpus has no tokens")
    return (total / count).to(torch.float32), count


def _save_atomic(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write a safetensors file through a temporary file in the same directory, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
