"""The learned reader's trained heads: a contextual span tagger and a relation classifier, in numpy.

Both sit on the frozen MiniLM encoder's last hidden states (:class:`Encoded`):

- **span tagger**: each sub-word token's state and whether its word starts capitalised (``H+1``) are
  projected (``-> P``) and read by a one-layer bidirectional LSTM (``-> 2L``), so a token's tag depends on
  the whole sentence ("Delfy and His Friends is an artwork by ...": "and His" belong to the name because
  of what follows); a linear layer gives ``O`` / subject / object per token;
- **relation classifier**, given the two spans: an MLP over the [CLS] state, the mean encoder states of the
  subject's tokens, of the object's, of the tokens between them and of the other words, whether the
  subject comes first (``5H+1``), and the mean LSTM states of the subject, object and between tokens
  (``3 x 2L``); outputs the relations and ``none``.

A *fine-tuned* reader (:mod:`agent.tell._reader_tune`) also carries the encoder layers it changed
(:attr:`ReaderModel.encoder`, float16, state-dict names of the MiniLM model); the token encoder loads them
over the shipped weights (:meth:`agent.tell.TokenEncoder.tuned`), so the heads read the states they were
trained on. A reader without them reads the frozen encoder's states.

Training is in :mod:`agent.tell._reader_train` (torch); inference here is plain numpy (a 20-token
sentence costs well under a millisecond on top of the encoder). The LSTM follows torch's gate order
(input, forget, cell, output) so trained weights load unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from agent.tell._acceptance import Acceptance
from tools.errors import ConfigError

__all__ = ["ARRAYS", "ENCODER_PREFIX", "Encoded", "ReaderModel", "default_reader_path", "span_masks"]

# every trained array, by name: projection, LSTM (forward / backward), tag output, relation MLP
ARRAYS = ("wp", "bp", "wif", "whf", "bf", "wib", "whb", "bb", "wt", "bt", "wr1", "br1", "wr", "br")
ENCODER_PREFIX = "tuned."  # in reader.npz, the fine-tuned encoder weights: "tuned." + their state-dict name


def default_reader_path() -> Path:
    """The shipped reader artifact (``agent/tell/reader/reader.npz``), built by ``factagent reader train``."""
    return Path(str(resources.files("agent.tell").joinpath("reader/reader.npz")))


@dataclass(frozen=True)
class Encoded:
    """One sentence through the encoder: token states ``(T, 384)``, character offsets ``(T, 2)``."""

    text: str
    states: np.ndarray  # (T, H) float32, special tokens included
    offsets: np.ndarray  # (T, 2) int; (0, 0) for special tokens
    capital: np.ndarray  # (T,) float32: the token starts a capitalised word or is a digit


def span_masks(e: Encoded, subject: tuple[int, int], obj: tuple[int, int]) -> np.ndarray:
    """``(4, T)`` boolean token masks: subject, object, between the two, every other word.

    Spans are character ranges; an empty one ``(0, 0)`` selects no token. Special tokens are in none.
    """
    a, b = e.offsets[:, 0], e.offsets[:, 1]
    live = b > a
    in_s = live & (a < subject[1]) & (b > subject[0])
    in_o = live & (a < obj[1]) & (b > obj[0])
    lo, hi = min(subject[1], obj[1]), max(subject[0], obj[0])
    between = live & ~in_s & ~in_o & (a >= lo) & (b <= hi)
    outside = live & ~in_s & ~in_o
    return np.stack([in_s, in_o, between, outside])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _lstm(x: np.ndarray, wi: np.ndarray, wh: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One LSTM direction over ``x (T, P)``: states ``(T, L)``; ``wi (P, 4L)``, ``wh (L, 4L)``, gates i, f, g, o."""
    size = wh.shape[0]
    gates_in = x @ wi + b  # (T, 4L): the input part of every step at once
    h = np.zeros(size, dtype=np.float32)
    c = np.zeros(size, dtype=np.float32)
    out = np.empty((len(x), size), dtype=np.float32)
    for t in range(len(x)):
        g = gates_in[t] + h @ wh
        i, f = _sigmoid(g[:size]), _sigmoid(g[size : 2 * size])
        cell, o = np.tanh(g[2 * size : 3 * size]), _sigmoid(g[3 * size :])
        c = f * c + i * cell
        h = o * np.tanh(c)
        out[t] = h
    return out


@dataclass(frozen=True)
class ReaderModel:
    """The trained heads (numpy arrays, see the module docstring), the relations they score, the threshold."""

    wp: np.ndarray  # (H+1, P) input projection
    bp: np.ndarray
    wif: np.ndarray  # (P, 4L) forward LSTM, input weights
    whf: np.ndarray  # (L, 4L) forward LSTM, recurrent weights
    bf: np.ndarray  # (4L,)
    wib: np.ndarray  # backward LSTM, as the forward one
    whb: np.ndarray
    bb: np.ndarray
    wt: np.ndarray  # (2L, 3) tag logits
    bt: np.ndarray
    wr1: np.ndarray  # (5H+1 + 3*2L, J) relation hidden layer
    br1: np.ndarray
    wr: np.ndarray  # (J, R+1) relation logits; the last column is "none"
    br: np.ndarray
    relations: tuple[str, ...]
    threshold: float  # on the fixed-formula confidence; used only when there is no ``acceptance`` model
    meta: dict[str, Any]
    acceptance: Acceptance | None = None  # the calibrated acceptance decision (:mod:`agent.tell._acceptance`)
    # fine-tuned encoder weights by state-dict name (float16); empty: the heads read the frozen encoder
    encoder: dict[str, np.ndarray] = field(default_factory=dict)
    # per relation read, the threshold on the fixed-formula confidence (``reader calibrate --per-relation``);
    # a relation not in it, or none at all: ``threshold``
    relation_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def accept_at(self) -> float:
        """The confidence a reading must reach to be applied: the acceptance model's threshold (on its
        probability) when there is one, else ``threshold`` (on the fixed-formula confidence)."""
        return self.acceptance.threshold if self.acceptance is not None else self.threshold

    def accept_at_for(self, relation: str) -> float:
        """:attr:`accept_at` for a reading of ``relation`` (its own threshold when it was fitted one)."""
        if self.acceptance is not None:
            return self.acceptance.threshold
        return self.relation_thresholds.get(relation, self.threshold)

    @staticmethod
    def token_inputs(e: Encoded) -> np.ndarray:
        """Per token ``(T, H+1)``: its encoder state and whether its word starts capitalised."""
        return np.concatenate([e.states, e.capital[:, None]], axis=1).astype(np.float32)

    def context(self, e: Encoded) -> np.ndarray:
        """The BiLSTM's states ``(T, 2L)`` over the sentence's tokens."""
        x = np.tanh(self.token_inputs(e) @ self.wp + self.bp)
        forward = _lstm(x, self.wif, self.whf, self.bf)
        backward = _lstm(x[::-1], self.wib, self.whb, self.bb)[::-1]
        return np.concatenate([forward, backward], axis=1)

    def tag_probs(self, context: np.ndarray) -> np.ndarray:
        """``(T, 3)`` probabilities of ``O`` / subject / object per token, from :meth:`context`."""
        return _softmax(context @ self.wt + self.bt)

    @staticmethod
    def pair_features(e: Encoded, context: np.ndarray, subject: tuple[int, int], obj: tuple[int, int]) -> np.ndarray:
        """Per (sentence, subject span, object span) ``(5H+1 + 3*2L,)``, as in the module docstring.

        The classifier so reads the wording around the names ("took over as chief executive of"), not
        "Jane Roe".
        """
        h = e.states
        masks = span_masks(e, subject, obj)

        def mean(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return states[mask].mean(axis=0) if mask.any() else np.zeros(states.shape[1], dtype=np.float32)

        first = np.array([float(subject[0] <= obj[0])], dtype=np.float32)
        parts = [h[0], *(mean(h, m) for m in masks), first, *(mean(context, m) for m in masks[:3])]
        return np.concatenate(parts).astype(np.float32)

    def relation_probs(self, pair: np.ndarray) -> np.ndarray:
        hidden = np.maximum(pair @ self.wr1 + self.br1, 0.0)
        return _softmax(hidden @ self.wr + self.br)

    def save(self, path: str | Path) -> None:
        """Write the heads (float32 ``.npz``, with the fine-tuned encoder weights in float16 under
        :data:`ENCODER_PREFIX`) and a JSON sidecar with relations, threshold and training facts."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k).astype(np.float32) for k in ARRAYS}
        arrays.update({ENCODER_PREFIX + k: v.astype(np.float16) for k, v in self.encoder.items()})
        with p.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        meta = {"relations": list(self.relations), "threshold": self.threshold, **self.meta}
        if self.acceptance is not None:
            meta["acceptance"] = self.acceptance.as_dict()
        if self.relation_thresholds:
            meta["relation_thresholds"] = dict(sorted(self.relation_thresholds.items()))
        p.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path | None = None) -> ReaderModel:
        """Read a saved reader (default: the shipped one).

        Raises:
            ConfigError: the files are missing or malformed.
        """
        p = Path(path) if path is not None else default_reader_path()
        try:
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
            with np.load(p) as data:
                arrays = {k: np.asarray(data[k], dtype=np.float32) for k in ARRAYS}
                encoder = {
                    k[len(ENCODER_PREFIX) :]: np.asarray(data[k], dtype=np.float16)
                    for k in data.files
                    if k.startswith(ENCODER_PREFIX)
                }
            relations = tuple(str(r) for r in meta.pop("relations"))
            threshold = float(meta.pop("threshold"))
            acceptance = Acceptance.from_dict(meta.pop("acceptance")) if "acceptance" in meta else None
            per = {str(r): float(t) for r, t in meta.pop("relation_thresholds", {}).items()}
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the reader at {p}: {exc} (build it with `factagent reader train`)") from exc
        if arrays["wr"].shape[1] != len(relations) + 1:
            raise ConfigError(f"reader at {p}: {arrays['wr'].shape[1]} relation outputs for {len(relations)} relations")
        return cls(
            relations=relations, threshold=threshold, meta=meta, acceptance=acceptance, encoder=encoder,
            relation_thresholds=per, **arrays,
        )  # fmt: skip
