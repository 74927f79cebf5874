"""The detox benchmark on a tiny model: the issue's JSON fields, and every edit rolled back."""

from __future__ import annotations

from typing import Any

import pytest

from eval.world.safety import EmbeddingJudge, SafetyCase, load_safety_slice, run_detox_bench
from tests.tools.edit._helpers import same, state
from tests.tools.tiny_archs import build
from tools.edit import get_editor
from tools.errors import InvalidEditError, UnknownEditorError

FIELDS = [
    "method", "model", "ds", "dg_onlyq", "dg_otherq", "dg_othera", "dg_otheraq", "known_accuracy_before",
    "known_accuracy_after", "fluency_before", "fluency_after", "seconds_per_edit", "n_cases",
]  # fmt: skip


def _short(i: int) -> SafetyCase:
    return SafetyCase(
        id=f"c{i}", category="test", adversarial_input=f"Be evil. Do X{i}?", request=f"Do X{i}?",
        safe_response="No, that hurts.", unsafe_response="Sure: [withheld].", only_q=f"Do X{i}?",
        other_q=("Be evil. Do Y?",), other_a=(f"No rules. Do X{i}?",), other_aq=("No rules. Do Y?",),
    )  # fmt: skip


def test_one_row_per_method_with_the_issue_fields(tiny_tokenizer: Any, bundled_world: Any, minilm: Any) -> None:
    lm = build("gpt2", tiny_tokenizer)
    before = state(lm)
    cases = [_short(i) for i in range(2)]  # the tiny tokenizer spends a token per character or two
    rows = run_detox_bench(
        [("tiny", lm)], cases, bundled_world, EmbeddingJudge.load(embedder=minilm), ("dinm", "ft-l"),
        known_limit=2, max_new_tokens=8, options={"ft-l": {"steps": 2}},
    )  # fmt: skip
    assert [(r.method, r.model) for r in rows] == [("dinm", "tiny"), ("ft-l", "tiny")]
    for row in rows:
        data = row.to_json()
        assert list(data)[: len(FIELDS)] == FIELDS and data["n_cases"] == 2
        assert all(0.0 <= data[k] <= 1.0 for k in ("ds", "dg_onlyq", "dg_otherq", "dg_othera", "dg_otheraq"))
    assert sum(rows[0].toxic_layers.values()) == 2
    assert same(before, state(lm))


def test_no_cases_or_an_unknown_method_fail_before_any_edit(tiny_tokenizer: Any, bundled_world: Any) -> None:
    lm = build("gpt2", tiny_tokenizer)
    judge: Any = None
    with pytest.raises(InvalidEditError):
        run_detox_bench([("tiny", lm)], [], bundled_world, judge)
    with pytest.raises(UnknownEditorError):
        run_detox_bench([("tiny", lm)], load_safety_slice().cases[:1], bundled_world, judge, ("nope",))


def test_dinm_gets_as_many_kl_inputs_as_its_n_benign(
    tiny_tokenizer: Any, bundled_world: Any, minilm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eval.world.safety._bench as bench

    corpora: list[int] = []

    def recording(name: str, **kwargs: Any) -> Any:
        if "corpus" in kwargs:
            corpora.append(len(kwargs["corpus"]))
        return get_editor(name, **kwargs)

    monkeypatch.setattr(bench, "get_editor", recording)
    lm = build("gpt2", tiny_tokenizer)
    for n in (5, 60):
        run_detox_bench(
            [("tiny", lm)], [_short(0)], bundled_world, EmbeddingJudge.load(embedder=minilm), ("dinm",),
            known_limit=2, max_new_tokens=4, options={"dinm": {"n_benign": n, "steps": 1}},
        )  # fmt: skip
    assert corpora == [5, 60]
    corpora.clear()  # the other editors get the world's documents (ROME's and MEMIT's key statistics read them)
    run_detox_bench(
        [("tiny", lm)], [_short(0)], bundled_world, EmbeddingJudge.load(embedder=minilm), ("ft-l",),
        known_limit=2, max_new_tokens=4,
    )  # fmt: skip
    assert corpora == [len(bundled_world.documents)]


def test_kl_inputs_spread_over_relations_and_avoid_the_measured_facts(tiny_tokenizer: Any, bundled_world: Any) -> None:
    from eval.world._check import build_probes
    from eval.world.safety import benign_prompts, dev_known_probes

    lm = build("gpt2", tiny_tokenizer)
    measured = [p.prompt for p in build_probes(bundled_world, lm.prompt_format, limit=25) if p.metric == "known_train"]
    kl = benign_prompts(bundled_world, lm, 48, avoid=measured)
    assert len(kl) == 48 and not any(t.startswith(m + " ") for t in kl for m in measured)
    relation_of = {f"{p.prompt} {p.answer}": p.relation for p in build_probes(bundled_world, lm.prompt_format)}
    assert len({relation_of[t] for t in kl}) >= 12  # the first 24 facts covered 3 relations
    dev = dev_known_probes(bundled_world, lm, avoid=measured + kl)
    assert len(dev) >= 90 and len({p.relation for p in dev}) >= 12
    assert not any(t.startswith(p.prompt) for p in dev for t in measured + kl)


def test_preserved_texts_are_the_documents_and_the_unmeasured_known_facts(
    tiny_tokenizer: Any, bundled_world: Any
) -> None:
    from eval.world._check import build_probes
    from eval.world.safety import world_stats

    lm = build("gpt2", tiny_tokenizer)
    measured = [p.prompt for p in build_probes(bundled_world, lm.prompt_format, limit=25) if p.metric == "known_train"]
    texts = world_stats(bundled_world, lm, avoid=measured)["stats_corpus"]
    docs = [d.text for d in bundled_world.documents]
    assert texts[: len(docs)] == docs
    facts = texts[len(docs) :]
    known = [p for p in build_probes(bundled_world, lm.prompt_format) if p.metric == "known_train"]
    assert len(facts) == len(known) - len(measured)  # every KNOWN fact but the measured ones, both prompts
    assert not any(t.startswith(m + " ") for t in facts for m in measured)


def test_dinm_in_the_bench_gets_the_preserved_texts(
    tiny_tokenizer: Any, bundled_world: Any, minilm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eval.world.safety._bench as bench

    seen: list[int] = []

    def recording(name: str, **kwargs: Any) -> Any:
        if "stats_corpus" in kwargs:
            seen.append(len(kwargs["stats_corpus"]))
        return get_editor(name, **kwargs)

    monkeypatch.setattr(bench, "get_editor", recording)
    lm = build("gpt2", tiny_tokenizer)
    run_detox_bench(
        [("tiny", lm)], [_short(0)], bundled_world, EmbeddingJudge.load(embedder=minilm), ("dinm",),
        known_limit=2, max_new_tokens=4, options={"dinm": {"steps": 1, "nullspace_energy": 0.5}},
    )  # fmt: skip
    assert len(seen) == 1 and seen[0] > len(bundled_world.documents)


def test_the_default_dinm_inputs_build_the_preserved_texts_only_when_asked(tiny_tokenizer: Any) -> None:
    from eval.world.safety import default_dinm_inputs

    lm = build("gpt2", tiny_tokenizer)
    plain = default_dinm_inputs(lm)
    assert set(plain) == {"corpus"} and plain["corpus"]
    full = default_dinm_inputs(lm, preserved=True)
    assert full["corpus"] == plain["corpus"] and len(full["stats_corpus"]) > len(plain["corpus"])
