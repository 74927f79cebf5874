"""layers="auto": the editors take their layers from the relation's circuit (CircuitLocator)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.circuits import CircuitLocator
from tools.edit import BaseEditor, EditRequest, KnowledgeLocator, get_editor
from tools.errors import InvalidEditError, InvalidInputError


@pytest.fixture(scope="module")
def lm() -> Any:
    from eval.world._pipeline import MODEL_NAMES, MODELS_DIR
    from tools.lm import HFLanguageModel

    return HFLanguageModel.load(MODELS_DIR / MODEL_NAMES["gpt2"], device="cpu")


@pytest.fixture(scope="module")
def locator(bundled_world: Any) -> CircuitLocator:
    from eval.circuits import relation_case_source

    return CircuitLocator(relation_case_source(bundled_world, n=3), steps=3)


def _editor(name: str, **hparams: Any) -> BaseEditor[Any]:
    editor = get_editor(name, **hparams)
    assert isinstance(editor, BaseEditor)
    return editor


REQUEST = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", relation="company_ceo")


def test_ranking_follows_the_mlp_attribution_at_the_subject(lm: Any, locator: CircuitLocator) -> None:
    assert isinstance(locator, KnowledgeLocator)
    ranking = locator.rank_layers(lm, (REQUEST,))
    scores = locator.mlp_scores(lm, "company_ceo", "Alibaba")
    assert sorted(ranking) == [0, 1, 2, 3]
    assert [scores[i] for i in ranking] == sorted(scores, reverse=True)
    assert scores[3] == 0.0  # the last MLP's output at the subject cannot reach the last position


def test_auto_layers_keep_the_method_default_count(lm: Any, locator: CircuitLocator) -> None:
    ranking = locator.rank_layers(lm, (REQUEST,))
    rome = _editor("rome", layers="auto", locator=locator).hparams_for(lm, [REQUEST])
    assert rome.layers == (ranking[0],)
    default = _editor("memit").hparams_for(lm).layers
    memit = _editor("memit", layers="auto", locator=locator).hparams_for(lm, [REQUEST])
    assert memit.layers == tuple(sorted(ranking[: len(default)]))


def test_auto_without_a_locator_or_relation_is_refused(lm: Any, locator: CircuitLocator) -> None:
    with pytest.raises(InvalidEditError, match="locator"):
        get_editor("rome", layers="auto")
    editor = _editor("rome", layers="auto", locator=locator)
    with pytest.raises(InvalidInputError, match="relation"):
        editor.hparams_for(lm, [EditRequest("Alibaba's CEO is", "Alibaba", "X")])
    with pytest.raises(InvalidInputError, match="unknown relation"):
        editor.hparams_for(lm, [EditRequest("Alibaba's CEO is", "Alibaba", "X", relation="no_such_relation")])
