"""Parametric edits of told facts on the bundled gpt2-world model: journaled, undone with the edit, exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from agent.config import TellSettings
from agent.tell import Controller, EditLog, ParametricEditor, TellEditor, TellPipeline, TemplateInterpreter
from agent.wiring import WorkingMemory
from eval.world import Edit, World
from tests.agent.tell.conftest import snapshot
from tests.conftest import REPO
from tools.edit import EditRequest, WeightDelta, journal_for
from tools.errors import EditError, NonFiniteUpdateError, StoreError
from tools.lm import HFLanguageModel


@pytest.fixture(scope="module")
def lm() -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")


@pytest.fixture(scope="module")
def corpus(bundled_world: World) -> tuple[str, ...]:
    return tuple(d.text for d in bundled_world.documents[:100])


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tell-stats")


@pytest.fixture(scope="module")
def known_edits(bundled_world: World, lm: HFLanguageModel) -> list[Edit]:
    """World edits of distinct subjects whose old object the unedited model gives."""
    edits = bundled_world.edits[:40]
    answers = lm.generate([e.prompt for e in edits], max_new_tokens=8)
    picked: list[Edit] = []
    for edit, answer in zip(edits, answers, strict=True):
        if answer.text.startswith(edit.old_object) and all(edit.subject not in p.prompt for p in picked):
            picked.append(edit)
    return picked[:2]


def _weights(lm: HFLanguageModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in lm.model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _says(lm: HFLanguageModel, prompt: str, answer: str) -> bool:
    return lm.generate([prompt], max_new_tokens=12)[0].text.startswith(answer)


def _open(wm: WorkingMemory, lm: HFLanguageModel, corpus: Any, stats_dir: Path, mode: str) -> TellPipeline:
    settings = TellSettings(parametric=mode, roles={"alice": "trusted"})  # type: ignore[arg-type]
    return TellPipeline.open(wm, settings, lm, corpus=corpus, cache_dir=stats_dir)


def test_immediate_rome_edit_is_journaled_and_rolled_back_bit_identical(
    wm: WorkingMemory, lm: HFLanguageModel, corpus: Any, stats_dir: Path, known_edits: list[Edit]
) -> None:
    edit = known_edits[0]
    pipeline = _open(wm, lm, corpus, stats_dir, "immediate")
    original = _weights(lm)
    result = pipeline.tell(f"{edit.prompt} {edit.new_object}.", user="alice")
    assert result.status == "applied" and len(result.journal_ids) == 1
    assert journal_for(lm.model).entry(result.journal_ids[0]).method == "rome"
    assert pipeline.log.edit(result.edit_id or "").journal_ids == result.journal_ids
    assert _says(lm, edit.prompt, edit.new_object)

    undone = pipeline.rollback(result.edit_id or "", user="alice")
    assert undone.journal_ids == result.journal_ids and "weights restored" in undone.message
    assert _same(original, _weights(lm))
    assert _says(lm, edit.prompt, edit.old_object)


class _FailingEditor:
    name = "failing"

    def compute(self, model: Any, requests: Any) -> Any:
        raise NonFiniteUpdateError("the update is not finite")

    def apply(self, model: Any, delta: Any) -> Any:  # pragma: no cover - compute fails first
        raise AssertionError


def _pipeline_with(wm: WorkingMemory, lm: HFLanguageModel, factory: Callable[[str], Any]) -> TellPipeline:
    parametric = ParametricEditor("immediate", wm.graph.schema, lm, factory)
    interpreter = TemplateInterpreter(wm.graph.schema, wm.entities, wm.graph)
    return TellPipeline(wm, interpreter, Controller(wm.graph), TellEditor(wm, EditLog(wm.db), parametric))


def test_a_failed_parametric_step_writes_nothing(wm: WorkingMemory, lm: HFLanguageModel) -> None:
    pipeline = _pipeline_with(wm, lm, lambda name: _FailingEditor())
    before, weights = snapshot(wm), _weights(lm)
    with pytest.raises(EditError, match="not finite"):
        pipeline.tell("Alibaba's CEO is Jane Roe.", user="alice")
    assert snapshot(wm) == before and _same(weights, _weights(lm))


class _TinyEditor:
    """A real journaled weight change (a constant added to one matrix), computed instantly."""

    name = "tiny"

    def compute(self, model: Any, requests: Any) -> WeightDelta:
        name, param = next(iter(model.model.named_parameters()))
        return WeightDelta("tiny", tuple(requests), {name: torch.full_like(param, 1e-3)})

    def apply(self, model: Any, delta: WeightDelta) -> Any:
        return journal_for(model.model).apply(delta)


def test_a_failed_database_write_takes_the_weight_edit_back(
    wm: WorkingMemory, lm: HFLanguageModel, known_edits: list[Edit], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _pipeline_with(wm, lm, lambda name: _TinyEditor())
    before, weights = snapshot(wm), _weights(lm)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(pipeline.log, "add_edit", broken)
    edit = known_edits[0]
    with pytest.raises(StoreError, match="disk full"):
        pipeline.tell(f"{edit.prompt} {edit.new_object}.", user="alice")
    assert snapshot(wm) == before and _same(weights, _weights(lm))
    assert len(journal_for(lm.model)) == 0


@pytest.mark.slow
def test_consolidation_writes_a_memit_batch_and_rollback_requeues_the_rest(
    wm: WorkingMemory, lm: HFLanguageModel, corpus: Any, stats_dir: Path, known_edits: list[Edit]
) -> None:
    pipeline = _open(wm, lm, corpus, stats_dir, "consolidate")
    original = _weights(lm)
    told = [pipeline.tell(f"{e.prompt} {e.new_object}.", user="alice") for e in known_edits]
    assert all(r.status == "applied" and r.journal_ids == () for r in told)
    assert _same(original, _weights(lm))  # queued, not yet in the weights

    journal_id = pipeline.consolidate()
    assert journal_id is not None and pipeline.consolidate() is None
    assert [pipeline.log.edit(r.edit_id or "").journal_ids for r in told] == [(journal_id,)] * len(told)
    assert journal_for(lm.model).entry(journal_id).method == "memit"

    first, *rest = told
    undone = pipeline.rollback(first.edit_id or "", user="alice")
    assert undone.requeued == tuple(r.edit_id for r in rest)
    assert _same(original, _weights(lm))
    again = pipeline.consolidate()
    assert again is not None and pipeline.log.edit(rest[0].edit_id or "").journal_ids == (again,)
    for r in rest:
        pipeline.rollback(r.edit_id or "", user="alice")
    assert _same(original, _weights(lm))


def test_requests_use_the_told_cloze_and_the_superseded_object(wm: WorkingMemory, lm: HFLanguageModel) -> None:
    parametric = ParametricEditor("immediate", wm.graph.schema, lm, lambda name: _FailingEditor())
    interpreter = TemplateInterpreter(wm.graph.schema, wm.entities, wm.graph)
    claims = interpreter.interpret("Alibaba's CEO is Jane Roe. Who is the CEO of Acme? The CEO of Acme is Bo.").claims
    from memory import Triple

    requests = parametric.requests(claims, [Triple("Acme", "company_ceo", "Al")])
    assert requests == [
        EditRequest("Alibaba's CEO is", "Alibaba", "Jane Roe", None, "company_ceo"),
        EditRequest("The CEO of Acme is", "Acme", "Bo", "Al", "company_ceo"),
    ]
