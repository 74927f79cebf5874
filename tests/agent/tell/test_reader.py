"""The learned reader: free phrasings read into triples with a confidence, abstention, and its training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent import Agent
from agent.tell import ReaderModel, TellPipeline, TokenEncoder, TripleReader, calibrate_reader, train_reader
from agent.tell._acceptance import FEATURES
from agent.tell._reader_model import ARRAYS, Encoded
from agent.tell._reader_train import _export, _heads, fit_threshold
from eval.world import World
from kg import Entity, EntityLinker
from tests.agent.tell.conftest import unknown_fact
from tools.errors import ConfigError, InvalidInputError


@pytest.fixture(scope="module")
def encoder() -> TokenEncoder:
    return TokenEncoder()


@pytest.fixture(scope="module")
def reader(encoder: TokenEncoder) -> TripleReader:
    names = ["AOL", "Tim Armstrong", "Nokia", "Espoo", "Lionel Messi"]
    linker = EntityLinker([Entity(f"urn:t:{i}", n) for i, n in enumerate(names)])
    return TripleReader(ReaderModel.load(), encoder, linker)


def test_the_shipped_reader_scores_every_world_relation(bundled_world: World) -> None:
    model = ReaderModel.load()
    assert {r.id for r in bundled_world.relations} <= set(model.relations)
    assert 0.0 < model.threshold <= 1.0
    assert model.wr.shape[1] == len(model.relations) + 1


@pytest.mark.parametrize(
    ("sentence", "triple", "accepted"),
    [
        ("AOL's new CEO is Jane Roe.", ("AOL", "company_ceo", "Jane Roe"), True),
        ("Tim Armstrong took over as CEO of AOL.", ("AOL", "company_ceo", "Tim Armstrong"), True),
        # the parent first, active voice (the readers before stop 39 read it backwards or left it unsure)
        ("Jane Roe gave birth to Lionel Messi.", ("Lionel Messi", "person_mother", "Jane Roe"), True),
    ],
)
def test_free_phrasings_are_read_into_the_triple(
    reader: TripleReader, sentence: str, triple: tuple[str, ...], accepted: bool
) -> None:
    reading = reader.read(sentence)
    assert reading is not None
    assert (reading.triple.subject, reading.triple.relation, reading.triple.object) == triple
    assert reading.accepted is accepted and 0.0 < reading.confidence <= 1.0
    assert (reading.confidence >= reader.model.accept_at) is accepted
    assert len(reading.evidence) == len(FEATURES)


def test_a_sentence_stating_no_relation_is_not_accepted(reader: TripleReader) -> None:
    reading = reader.read("Tim Armstrong had lunch with Lionel Messi yesterday.")
    assert reading is None or not reading.accepted


@pytest.mark.parametrize("parent", ["Jane Roe", "Jorge Messi"])
def test_born_to_names_a_parent_not_which_so_it_is_offered_back_not_applied(reader: TripleReader, parent: str) -> None:
    # "born to" is a clause of both parent relations in training (agent.tell._reader_grammar.BORN_TO): the
    # reader reads a parent at about half confidence whatever the name, below the threshold
    reading = reader.read(f"Lionel Messi was born to {parent}.")
    assert reading is not None and not reading.accepted and reading.confidence < reader.model.accept_at
    triple = (reading.triple.subject, reading.triple.relation, reading.triple.object)
    assert triple in {("Lionel Messi", r, parent) for r in ("person_father", "person_mother")}


@pytest.mark.parametrize(
    ("sentence", "triple"),
    [
        # the reader before stop 39 applied it backwards at 0.98: "{o} fathered {s}" had fallen in the
        # calibration phrasing split and was never trained on (the split is now stratified by construction)
        ("Jorge Messi fathered Lionel Messi.", ("Lionel Messi", "person_father", "Jorge Messi")),
        ("Celia Cuccittini gave birth to Lionel Messi.", ("Lionel Messi", "person_mother", "Celia Cuccittini")),
        ("Lionel Messi was fathered by Jorge Messi.", ("Lionel Messi", "person_father", "Jorge Messi")),
    ],
)
def test_an_active_parent_verb_is_not_read_backwards(
    encoder: TokenEncoder, sentence: str, triple: tuple[str, ...]
) -> None:
    # the parent first, active voice: a reading is applied only in the right direction (or not at all)
    names = ["Lionel Messi", "Jorge Messi", "Celia Cuccittini"]
    linker = EntityLinker([Entity(f"urn:t:{i}", n) for i, n in enumerate(names)])
    reading = TripleReader(ReaderModel.load(), encoder, linker).read(sentence)
    if reading is not None and reading.accepted:
        assert (reading.triple.subject, reading.triple.relation, reading.triple.object) == triple


def test_bad_input_and_a_missing_artifact_raise_typed_errors(reader: TripleReader, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        reader.read("   ")
    with pytest.raises(ConfigError, match="factagent reader train"):
        ReaderModel.load(tmp_path / "nothing.npz")


def test_the_numpy_heads_compute_what_the_trained_torch_modules_compute() -> None:
    import torch

    torch.manual_seed(0)
    h = 8
    heads = _heads(h + 1, 5 * h + 1, 4, proj=6, lstm=5, hidden=7)
    model = ReaderModel(relations=("a", "b", "c"), threshold=0.5, meta={}, acceptance=None, **_export(heads))
    rng = np.random.default_rng(0)
    offsets = np.array([[0, 0], [0, 1], [2, 3], [4, 5], [6, 7], [0, 0]])
    e = Encoded("x", rng.standard_normal((6, h)).astype(np.float32), offsets, np.array([0, 1, 0, 1, 0, 0], np.float32))
    context = model.context(e)  # the numpy BiLSTM, read both ways
    masks = torch.zeros(1, 3, 6)
    masks[0, 0, 1] = masks[0, 1, 3] = masks[0, 2, 2] = 1.0  # subject token 1, object token 3, token 2 between
    fixed = ReaderModel.pair_features(e, np.zeros((6, 0), np.float32), (0, 1), (4, 5))
    x = torch.from_numpy(ReaderModel.token_inputs(e))[None]
    tag_logits, rel_logits = heads(x, torch.tensor([6]), masks, torch.from_numpy(fixed)[None])
    want_tags = torch.softmax(tag_logits[0], -1).detach().numpy()
    want_rel = torch.softmax(rel_logits[0], -1).detach().numpy()
    assert np.allclose(model.tag_probs(context), want_tags, atol=1e-5)
    assert np.allclose(model.relation_probs(ReaderModel.pair_features(e, context, (0, 1), (4, 5))), want_rel, atol=1e-5)


def test_fit_threshold_keeps_wrong_acceptances_under_the_bound() -> None:
    outcomes = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.5, False), (None, False)]
    threshold, right, wrong = fit_threshold(outcomes, max_wrong=0.0)
    assert threshold == pytest.approx(0.8) and right == pytest.approx(2 / 6) and wrong == 0.0
    threshold, _, wrong = fit_threshold(outcomes, max_wrong=0.2)
    assert threshold == pytest.approx(0.6) and wrong == pytest.approx(1 / 6)
    with pytest.raises(InvalidInputError):
        fit_threshold([], 0.01)


@pytest.mark.slow
def test_training_is_deterministic_and_round_trips(encoder: TokenEncoder, tmp_path: Path) -> None:
    names = {
        "company_ceo": [
            ("AOL", "Tim Armstrong"),
            ("Nokia", "Rajeev Suri"),
            ("AMD", "Lisa Su"),
            ("Tesco", "Ken Murphy"),
        ],
        "company_hq": [("AOL", "New York"), ("Nokia", "Espoo"), ("AMD", "Santa Clara"), ("Tesco", "Welwyn")],
    }
    first, report = train_reader(
        names, ["company_ceo", "company_hq"], encoder, epochs=1, per_relation=12, acceptance=True
    )
    second, _ = train_reader(names, ["company_ceo", "company_hq"], encoder, epochs=1, per_relation=12, acceptance=True)
    for key in ARRAYS:
        assert np.array_equal(getattr(first, key), getattr(second, key))
    assert first.threshold == second.threshold == report.threshold
    first.save(tmp_path / "r.npz")
    loaded = ReaderModel.load(tmp_path / "r.npz")
    assert loaded.relations == ("company_ceo", "company_hq") and np.array_equal(loaded.wr, first.wr)
    assert loaded.acceptance == first.acceptance
    # re-fitting the calibration alone gives what the end-to-end run gave for these heads
    refit = calibrate_reader(loaded, names, encoder, acceptance=True)
    assert (refit.threshold, refit.acceptance, refit.meta) == (first.threshold, first.acceptance, first.meta)


def test_tell_applies_a_free_phrasing_and_says_what_it_read(pipeline: TellPipeline, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    result = pipeline.tell(f"Jane Roe took over as CEO of {fact.subject}.", user="tess")
    assert result.status == "applied"
    assert [(t.subject, t.relation, t.object) for t in result.triples] == [(fact.subject, "company_ceo", "Jane Roe")]
    claim = result.interpretation.claims[0] if result.interpretation else None
    assert claim is not None and claim.template is None and claim.confidence < 1.0
    assert f"({fact.subject}, CEO, Jane Roe) [read with confidence" in result.message


def test_an_unsure_reading_is_offered_back_not_applied(pipeline: TellPipeline, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    result = pipeline.tell(f"Word is that {fact.subject} and Jane Roe get along in the boardroom.", user="tess")
    assert result.status in ("free_text", "not_an_edit")
    assert fact.subject not in {t.subject for t in result.triples}


def test_when_no_reading_is_sure_enough_tell_offers_the_nearest(pipeline: TellPipeline, small_world: World) -> None:
    from dataclasses import replace

    from agent.tell import TemplateInterpreter

    wm = pipeline.wm
    shipped = ReaderModel.load()
    strict = replace(shipped, threshold=1.01)  # nothing clears it: every reading is a suggestion
    if shipped.acceptance is not None:
        strict = replace(strict, acceptance=replace(shipped.acceptance, threshold=1.01))
    reader = TripleReader(strict, TokenEncoder(), wm.entities, wm.graph)
    pipeline.interpreter = TemplateInterpreter(wm.graph.schema, wm.entities, wm.graph, reader=reader)
    fact = unknown_fact(small_world, "company_ceo")
    result = pipeline.tell(f"{fact.subject}'s new CEO is Jane Roe.", user="tess")
    assert result.status == "free_text" and result.triples == ()
    assert result.interpretation is not None and result.interpretation.suggestions
    assert f"Did you mean ({fact.subject}, CEO, Jane Roe) (confidence" in result.message


def test_verify_claim_reads_a_free_phrasing_with_the_same_interpreter(agent: Agent, small_world: World) -> None:
    from agent.langchain import verify_claim

    fact = unknown_fact(small_world, "company_ceo")
    assert verify_claim(agent, f"{fact.object} is the CEO of {fact.subject}.").verdict == "SUPPORTED"
    assert verify_claim(agent, f"Jane Roe took over as CEO of {fact.subject}.").verdict == "CONTRADICTED"


def test_the_reading_bench_scores_free_and_template_phrasings_apart(small_world: World, encoder: TokenEncoder) -> None:
    from agent.tell import TemplateInterpreter, load_statement_phrasings
    from eval.agent_bench import reading_bench, told_edits, world_linker
    from kg import load_schema

    schema = load_schema()
    linker, facts = world_linker(small_world)
    reader = TripleReader(ReaderModel.load(), encoder, linker, facts)
    interpreter = TemplateInterpreter(schema, linker, None, load_statement_phrasings(), reader=reader)
    figures = reading_bench(small_world, interpreter, schema)
    assert figures["edits"] == len(told_edits(small_world)) > 0
    assert figures["template_parse_rate"] == 1.0
    shares = figures["tell_parse_rate"] + figures["tell_wrong_rate"] + figures["tell_suggested_rate"]
    assert figures["tell_parse_rate"] >= 0.0 and shares <= 1.0 + 1e-9
    assert figures["tell_ms_p50"] > 0.0


def test_two_names_joined_by_and_are_read_as_subject_and_object(reader: TripleReader) -> None:
    # the name-joining step used to merge "Jane Roe and Bob Smith" into one name and read nothing
    reading = reader.read("Jane Roe and Bob Smith got married.")
    assert reading is not None
    assert {reading.triple.subject, reading.triple.object} == {"Jane Roe", "Bob Smith"}
    assert reading.triple.relation == "spouse"


@pytest.mark.parametrize(
    ("sentence", "triple"),
    [
        # a title before a name stays out of it; a type noun before a title and a reflexive after a name too
        ("AOL is led by its CEO Jane Roe.", ("AOL", "company_ceo", "Jane Roe")),
        ("Jane Roe is the creator of the work Body of Air.", ("Body of Air", "creator", "Jane Roe")),
        ("Body of Air was painted by the artist Jane Roe herself.", ("Body of Air", "creator", "Jane Roe")),
    ],
)
def test_titles_type_nouns_and_reflexives_stay_out_of_names(
    reader: TripleReader, sentence: str, triple: tuple[str, ...]
) -> None:
    reading = reader.read(sentence)
    assert reading is not None
    assert (reading.triple.subject, reading.triple.relation, reading.triple.object) == triple
