"""The safety slice of the reference world: harmful requests, attack prompts, responses, splits and cases.

Built deterministically from :mod:`eval.world.safety._content` (no randomness beyond stable hashes):

* 9 categories x 10 requests; per category, by a stable shuffle, 6 requests are ``train`` (the vulnerable
  models and the judge learn from them), 2 ``edit`` (the detox benchmark's cases) and 2 ``test``;
* 24 attack templates: the first 16 ``train`` (used by training and by edit cases), the last 8 ``test``
  (held out: DG_otherA and the test prompts);
* every request has an unsafe response (compliance, then placeholders only) and a safe refusal with a reason;
* :class:`SafetyCase`: one edit request wrapped in one train attack, with SafeEdit's generalization inputs:
  the bare request (DG_onlyQ), the same attack on other requests (DG_otherQ), other attacks on the same
  request (DG_otherA), and other attacks on other requests (DG_otherAQ); the other requests are ``test``
  requests, the other attacks ``test`` attacks. Three cases per edit request: 54 cases.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from eval.world._build import stable_unit
from eval.world.safety._content import (
    ATTACK_TEMPLATES,
    CATEGORIES,
    COMPLY_FORMS,
    PLACEHOLDER_STEPS,
    REFUSE_FORMS,
    REQUEST_FORMS,
    TRAIN_ATTACKS,
)
from tools.errors import WorldFormatError

__all__ = [
    "AttackTemplate",
    "SafetyCase",
    "SafetyRequest",
    "SafetySlice",
    "build_safety_slice",
    "dev_cases",
    "load_safety_slice",
    "write_safety_slice",
]

Split = Literal["train", "edit", "test"]
SPLIT_SIZES: tuple[tuple[Split, int], ...] = (("train", 6), ("edit", 2), ("test", 2))
CASES_PER_REQUEST = 3
OTHERS_PER_CASE = 2  # prompts per DG_otherQ / DG_otherA / DG_otherAQ of one case
DATA_FILE = Path(__file__).parent / "data" / "safety.json"


@dataclass(frozen=True)
class SafetyRequest:
    """A harmful request with its two responses."""

    id: str
    category: str
    split: Split
    text: str  # the request as asked ("How can I ...?")
    unsafe_response: str  # compliance followed by placeholders only
    safe_response: str  # a refusal that says why


@dataclass(frozen=True)
class AttackTemplate:
    """An attack prompt with one ``{}`` slot for the request."""

    id: str
    split: Literal["train", "test"]
    template: str

    def wrap(self, request: str) -> str:
        """The attack-wrapped request."""
        return self.template.replace("{}", request, 1)


@dataclass(frozen=True)
class SafetyCase:
    """One detox instance: an adversarial input, its responses, and the inputs that test generalization.

    The inputs are questions as a user types them; a benchmark wraps each in the model's prompt format.
    """

    id: str
    category: str
    adversarial_input: str
    request: str
    safe_response: str
    unsafe_response: str
    only_q: str
    other_q: tuple[str, ...]
    other_a: tuple[str, ...]
    other_aq: tuple[str, ...]


@dataclass(frozen=True)
class SafetySlice:
    """Requests, attack templates and edit cases of the safety slice."""

    requests: tuple[SafetyRequest, ...]
    attacks: tuple[AttackTemplate, ...]
    cases: tuple[SafetyCase, ...]

    def requests_in(self, split: Split) -> list[SafetyRequest]:
        """The requests of one split."""
        return [r for r in self.requests if r.split == split]

    def attacks_in(self, split: Literal["train", "test"]) -> list[AttackTemplate]:
        """The attack templates of one split."""
        return [a for a in self.attacks if a.split == split]

    def test_prompts(self) -> list[tuple[str, SafetyRequest]]:
        """Every test request wrapped in every held-out attack: ``(input, request)`` pairs."""
        return [(a.wrap(r.text), r) for r in self.requests_in("test") for a in self.attacks_in("test")]


def _second_person(text: str) -> str:
    """Responses speak to the user: "my coworker" -> "your coworker"."""
    return f" {text} ".replace(" my ", " your ").replace(" myself ", " yourself ").strip()


def _request(category: str, reason: str, action: str, index: int, split: Split) -> SafetyRequest:
    key = f"{category}/{index}"
    form = REQUEST_FORMS[int(stable_unit(key, "form") * len(REQUEST_FORMS))]
    comply = COMPLY_FORMS[int(stable_unit(key, "comply") * len(COMPLY_FORMS))]
    refuse = REFUSE_FORMS[int(stable_unit(key, "refuse") * len(REFUSE_FORMS))]
    yours = _second_person(action)
    return SafetyRequest(
        id=f"safety-{category}-{index:02d}",
        category=category,
        split=split,
        text=form.format(action),
        unsafe_response=f"{comply.format(yours)} {PLACEHOLDER_STEPS}",
        safe_response=refuse.format(yours, reason),
    )


def _pick(items: list[Any], key: str, n: int) -> list[Any]:
    return sorted(items, key=lambda item: stable_unit(key, getattr(item, "id", item)))[:n]


def build_safety_slice() -> SafetySlice:
    """The whole slice in memory (deterministic; no file I/O)."""
    requests: list[SafetyRequest] = []
    for category, (reason, actions) in CATEGORIES.items():
        order = sorted(range(len(actions)), key=lambda i: stable_unit(category, "split", i))
        splits: list[Split] = [s for s, n in SPLIT_SIZES for _ in range(n)]
        by_index = dict(zip(order, splits, strict=True))
        requests += [_request(category, reason, a, i, by_index[i]) for i, a in enumerate(actions)]
    attacks = tuple(
        AttackTemplate(id=f"attack-{i:02d}", split="train" if i < TRAIN_ATTACKS else "test", template=t)
        for i, t in enumerate(ATTACK_TEMPLATES)
    )
    partial = SafetySlice(tuple(requests), attacks, ())
    return SafetySlice(partial.requests, attacks, tuple(_cases(partial)))


def _cases(sl: SafetySlice) -> list[SafetyCase]:
    train_attacks, test_attacks = sl.attacks_in("train"), sl.attacks_in("test")
    test_requests = sl.requests_in("test")
    cases = []
    for req in sl.requests_in("edit"):
        for k, attack in enumerate(_pick(train_attacks, req.id, CASES_PER_REQUEST)):
            key = f"{req.id}/{k}"
            others = [r.text for r in _pick(test_requests, key + "q", OTHERS_PER_CASE)]
            other_attacks = _pick(test_attacks, key + "a", OTHERS_PER_CASE)
            cases.append(_case(f"{req.id}-case{k}", req, attack, others, other_attacks))
    return cases


def dev_cases(sl: SafetySlice) -> list[SafetyCase]:
    """Cases for choosing settings, apart from the 54 edit cases: TRAIN requests in TRAIN attacks.

    No edit or test request and no held-out attack appears in them: the adversarial input is a train request
    in a train attack, DG_otherQ / DG_otherAQ use two other train requests (other categories), DG_otherA two
    other train attacks. Ordered one case per category first (then the next round), so a prefix spreads over
    the categories. Deterministic (stable hashes).
    """
    train = sl.requests_in("train")
    attacks = sl.attacks_in("train")
    by_category: dict[str, list[SafetyRequest]] = {}
    for r in train:
        by_category.setdefault(r.category, []).append(r)
    rounds = max(len(v) for v in by_category.values())
    cases = []
    for k in range(rounds):
        for category, reqs in by_category.items():
            if k >= len(reqs):
                continue
            req = reqs[k]
            key = f"{req.id}/dev"
            attack, *other_attacks = _pick(attacks, key + "a", 1 + OTHERS_PER_CASE)
            others = [r.text for r in _pick([r for r in train if r.category != category], key + "q", OTHERS_PER_CASE)]
            cases.append(_case(f"{req.id}-dev", req, attack, others, other_attacks))
    return cases


def _case(
    case_id: str, req: SafetyRequest, attack: AttackTemplate, others: list[str], other_attacks: list[AttackTemplate]
) -> SafetyCase:
    """One case: ``req`` wrapped in ``attack``, with DG inputs from the ``others`` requests and ``other_attacks``."""
    return SafetyCase(
        id=case_id,
        category=req.category,
        adversarial_input=attack.wrap(req.text),
        request=req.text,
        safe_response=req.safe_response,
        unsafe_response=req.unsafe_response,
        only_q=req.text,
        other_q=tuple(attack.wrap(q) for q in others),
        other_a=tuple(a.wrap(req.text) for a in other_attacks),
        other_aq=tuple(a.wrap(q) for a, q in zip(other_attacks, others, strict=True)),
    )


def write_safety_slice(sl: SafetySlice, path: Path = DATA_FILE) -> Path:
    """Write the slice as one JSON file (sorted, stable: rebuilding gives the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": 1,
        "requests": [asdict(r) for r in sl.requests],
        "attacks": [asdict(a) for a in sl.attacks],
        "cases": [asdict(c) for c in sl.cases],
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_safety_slice(path: Path = DATA_FILE) -> SafetySlice:
    """Read a slice written by :func:`write_safety_slice`.

    Raises:
        WorldFormatError: the file is missing or malformed.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        requests = tuple(SafetyRequest(**r) for r in data["requests"])
        attacks = tuple(AttackTemplate(**a) for a in data["attacks"])
        cases = tuple(
            SafetyCase(**{**c, **{k: tuple(c[k]) for k in ("other_q", "other_a", "other_aq")}}) for c in data["cases"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorldFormatError(f"cannot read the safety slice {path}: {exc}") from exc
    return SafetySlice(requests, attacks, cases)
