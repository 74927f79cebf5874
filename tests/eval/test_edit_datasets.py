"""Edit-case loaders: the reference world, EasyEdit / KnowEdit / CKnowEdit files, and the Pitfalls sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.editing import (
    PITFALLS_DIR,
    EditCase,
    PortabilityProbe,
    Probe,
    detect_format,
    load_edit_dataset,
    pitfalls_edit_cases,
    world_edit_cases,
)
from tools.errors import WorldFormatError
from tools.lm import PromptFormat

DATA = Path(__file__).parent / "data"
FMT = PromptFormat()


@pytest.fixture(scope="module")
def world_cases(bundled_world: Any) -> list[EditCase]:
    return world_edit_cases(bundled_world, FMT)


# ------------------------------------------------------------------------------------------------ world


def test_world_cases_mirror_the_edits(bundled_world: Any, world_cases: list[EditCase]) -> None:
    assert len(world_cases) == len(bundled_world.edits) == 600
    edit, case = bundled_world.edits[0], world_cases[0]
    assert case.id == edit.id and case.source == "world" and case.relation == edit.relation
    assert (case.request.prompt, case.request.subject) == (edit.prompt, edit.subject)
    assert (case.request.target_new, case.request.target_old, case.ground_truth) == (
        edit.new_object,
        edit.old_object,
        edit.old_object,
    )
    assert case.locality == tuple(Probe(p.text, p.answer) for p in edit.neighbourhood)
    for raw, wrapped in zip(edit.paraphrases, case.paraphrases, strict=True):
        assert wrapped == (FMT.question(raw) if raw.endswith("?") else raw)
    assert any(p.startswith("Q: ") and p.endswith("\nA:") for p in case.paraphrases)


def test_world_reverse_probes_use_the_inverse_or_a_symmetric_relation(
    bundled_world: Any, world_cases: list[EditCase]
) -> None:
    by_id = {c.id: c for c in world_cases}
    kinds = {e.relation for e in bundled_world.edits if any(p.kind == "reverse" for p in by_id[e.id].portability)}
    assert kinds == {"creator", "notable_work", "doctoral_advisor", "doctoral_student", "spouse"}
    edit = next(e for e in bundled_world.edits if e.relation == "creator")
    (probe,) = [p for p in by_id[edit.id].portability if p.kind == "reverse"]
    assert probe == PortabilityProbe(f"The notable work of {edit.new_object} is", edit.subject, "reverse")
    spouse = next(e for e in bundled_world.edits if e.relation == "spouse")
    assert PortabilityProbe(f"The spouse of {spouse.new_object} is", spouse.subject, "reverse") in (
        by_id[spouse.id].portability
    )
    # no symmetric relations given: spouse edits get no reverse probe
    plain = {c.id: c for c in world_edit_cases(bundled_world, FMT, symmetric=())}
    assert not [p for p in plain[spouse.id].portability if p.kind == "reverse"]


def test_world_multi_hop_probes_compose_a_noun_phrase_with_a_known_fact(
    bundled_world: Any, world_cases: list[EditCase]
) -> None:
    known = {(f.subject, f.relation): f.object for f in bundled_world.facts_in("known")}
    hops = [(c, p) for c in world_cases for p in c.portability if p.kind == "multi_hop"]
    assert len(hops) >= 20
    for case, probe in hops:
        assert f"of {case.request.subject}" in probe.prompt
        assert probe.answer in {o for (s, _), o in known.items() if s == case.request.target_new}
    case = next(c for c in world_cases if c.request.prompt == "AMR 33 was created by")
    assert (
        PortabilityProbe(
            "The chief executive officer of the maker of AMR 33 is",
            known[(case.request.target_new, "company_ceo")],
            "multi_hop",
        )
        in case.portability
    )


# ----------------------------------------------------------------------------------------- EasyEdit files


def test_zsre_mend_format() -> None:
    cases = load_edit_dataset(DATA / "zsre_mend_eval.json")
    assert [c.id for c in cases] == ["zsre-0", "zsre-2"]  # the row with an empty "alt" is skipped, like EasyEdit
    case = cases[0]
    assert case.source == "zsre"
    assert (case.request.prompt, case.request.subject, case.request.target_new) == (
        "In which country is Kolonia Rybacka?",
        "Kolonia Rybacka",
        "Hungary",
    )
    assert case.ground_truth == case.request.target_old == "Poland"
    assert case.paraphrases == ("Kolonia Rybacka is located in which country?",)
    assert case.locality == (Probe("nq question: who wrote the song moon river", "Johnny Mercer"),)
    assert case.portability[0].kind == "multi_hop" and case.portability[0].answer == "Budapest"


def test_prompt_format_wraps_questions_only() -> None:
    case = load_edit_dataset(DATA / "zsre_mend_eval.json", prompt_format=FMT)[0]
    assert case.request.prompt == "Q: In which country is Kolonia Rybacka?\nA:"
    assert case.paraphrases == (FMT.question("Kolonia Rybacka is located in which country?"),)
    assert case.locality[0].prompt.startswith("nq question: ")  # not a question mark: left as it is
    assert case.portability[0].prompt.startswith("Q: ")


def test_knowedit_zsre_format() -> None:
    cases = load_edit_dataset(DATA / "knowedit_zsre.json")
    assert [c.source for c in cases] == ["zsre", "zsre"]
    case = cases[0]
    assert case.ground_truth == "Libellulidae" and case.request.target_new == "Libellulinae"
    assert case.paraphrases == ("What family is Orthetrum part of?",)
    assert case.locality == (
        Probe("The taxon rank of Orthetrum is", "genus"),
        Probe("Orthetrum taxon rank", "genus"),
    )
    assert case.portability == (
        PortabilityProbe("What is the common name of the family Orthetrum belongs to?", "Skimmers", "multi_hop"),
    )
    assert cases[1].portability == ()


def test_knowedit_counterfact_format() -> None:
    cases = load_edit_dataset(DATA / "knowedit_counterfact.json")
    case = cases[0]
    assert case.source == "counterfact" and case.ground_truth == "mayor of Uppsala"
    assert case.paraphrases == ("Helga Lindqvist held the position of",)
    assert [p.kind for p in case.portability] == ["alias", "multi_hop", "logical"]
    assert case.portability[1].answer == "Sweden" and case.portability[2].answer == "yes"  # first alias kept
    assert [p.answer for p in case.locality] == ["female", "mayor of Uppsala"]  # Relation_Specificity, Forgetfulness
    assert cases[1].paraphrases == ()  # no rephrase_prompt in this row


def test_easyedit_and_rome_counterfact_formats() -> None:
    (easy,) = load_edit_dataset(DATA / "easyedit_counterfact.json")
    assert easy.id == "7" and easy.locality == (Probe("The mother tongue of Oscar Lindgren is", "Swedish"),)
    assert easy.paraphrases == ("Julien Marceau grew up speaking",)
    (rome,) = load_edit_dataset(DATA / "rome_counterfact.json")
    assert rome.id == "11" and rome.relation == "P176"
    assert rome.request.prompt == "Walkman is a product of" and rome.request.target_old == "Sony"
    assert rome.paraphrases == ("The Walkman was built by", "Walkman is manufactured by")
    assert rome.locality == (Probe("PlayStation 2 is a product of", "Sony"), Probe("Xperia is made by", "Sony"))


def test_wiki_recent_format() -> None:
    cases = load_edit_dataset(DATA / "knowedit_recent.json")
    case = cases[0]
    assert case.source == "wiki_recent" and case.ground_truth is None and case.request.target_old is None
    assert case.paraphrases == ("Ilse Brandt died in the city of",)
    assert case.locality == (Probe("The name of the father of Ilse Brandt is", "Otto Brandt"),)  # empty answer dropped
    assert {p.kind: p.answer for p in case.portability} == {"logical": "no", "multi_hop": "Germany", "alias": "Leipzig"}
    assert cases[1].locality == () and cases[1].portability == ()


def test_cknowedit_format() -> None:
    cases = load_edit_dataset(DATA / "cknowedit.json")
    case = cases[0]
    assert case.source == "cknowedit"
    assert case.request.subject == "蚌埠"  # the instruction prefix is not part of the subject
    assert case.ground_truth == "蚌埠的拼音是：bàng fù"
    assert case.paraphrases == ("蚌埠的正确拼音是什么？", "请注音：蚌埠。")
    assert case.locality == (Probe("请给下面的字注音：河蚌", "河蚌的注音是：hé bàng"),)
    assert case.portability == (PortabilityProbe("请给下面的字注音：蚌埠市", "蚌埠市的注音是：bèng bù shì", "other"),)
    assert cases[1].request.subject == cases[1].request.prompt  # no known prefix: the whole prompt
    wrapped = load_edit_dataset(DATA / "cknowedit.json", prompt_format=FMT)[0]
    assert wrapped.paraphrases[0] == FMT.question("蚌埠的正确拼音是什么？")  # full-width question mark


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zsre_mend_eval.json", "zsre"),
        ("knowedit_zsre.json", "zsre"),
        ("knowedit_counterfact.json", "counterfact"),
        ("easyedit_counterfact.json", "counterfact"),
        ("rome_counterfact.json", "counterfact"),
        ("knowedit_recent.json", "wiki_recent"),
        ("cknowedit.json", "cknowedit"),
    ],
)
def test_auto_detection_matches_the_explicit_format(name: str, expected: str) -> None:
    rows = json.loads((DATA / name).read_text(encoding="utf-8"))
    assert detect_format(rows[0]) == expected
    assert load_edit_dataset(DATA / name) == load_edit_dataset(DATA / name, expected)


# ----------------------------------------------------------------------------------------------- errors


def test_malformed_jsonl_row_names_file_and_line() -> None:
    with pytest.raises(WorldFormatError, match=r"bad_zsre\.jsonl line 3: field 'alt'"):
        load_edit_dataset(DATA / "bad_zsre.jsonl")
    assert len(load_edit_dataset(DATA / "bad_zsre.jsonl", strict=False)) == 2
    assert [c.id for c in load_edit_dataset(DATA / "bad_zsre.jsonl", strict=False)] == ["zsre-L1", "zsre-L2"]


def test_malformed_json_row_names_file_and_index() -> None:
    with pytest.raises(WorldFormatError, match=r"bad_counterfact\.json index 1: .*does not occur in prompt"):
        load_edit_dataset(DATA / "bad_counterfact.json", "counterfact")
    assert len(load_edit_dataset(DATA / "bad_counterfact.json", strict=False)) == 1


def test_bad_files_and_formats(tmp_path: Path) -> None:
    with pytest.raises(WorldFormatError, match="cannot read"):
        load_edit_dataset(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"subject": "x",', encoding="utf-8")
    with pytest.raises(WorldFormatError, match="not valid JSON"):
        load_edit_dataset(broken)
    odd = tmp_path / "odd.json"
    odd.write_text('[{"question": "?"}]', encoding="utf-8")
    with pytest.raises(WorldFormatError, match="cannot tell the edit dataset format"):
        load_edit_dataset(odd)
    with pytest.raises(WorldFormatError, match="unknown edit dataset format"):
        load_edit_dataset(DATA / "cknowedit.json", "wikibio")  # type: ignore[arg-type]
    not_object = tmp_path / "rows.json"
    not_object.write_text('["a prompt"]', encoding="utf-8")
    with pytest.raises(WorldFormatError, match="index 0: expected a JSON object"):
        load_edit_dataset(not_object, "zsre")
    bad_locality = tmp_path / "loc.json"
    row = json.loads((DATA / "knowedit_counterfact.json").read_text(encoding="utf-8"))[1]
    row["locality"] = {"Relation_Specificity": [{"prompt": "The director of Caro Diario is"}]}
    bad_locality.write_text(json.dumps([row]), encoding="utf-8")
    with pytest.raises(WorldFormatError, match=r"index 0: locality\.Relation_Specificity\[0\]"):
        load_edit_dataset(bad_locality)


# ----------------------------------------------------------------------------------------------- Pitfalls


@pytest.mark.parametrize("set_name", ["coverage", "reverse", "composite"])
def test_real_pitfalls_sets_load_every_case(set_name: str) -> None:
    cases = pitfalls_edit_cases(set_name)  # type: ignore[arg-type]
    assert len(cases) == 2500
    assert all(len(c.followups) == 1 and c.source == f"pitfalls/{set_name}" for c in cases)
    assert cases[0].id == f"pitfalls-{set_name}-0"
    expected_kind = {"coverage": None, "reverse": "reverse", "composite": "multi_hop"}[set_name]
    assert all([p.kind for p in c.portability] == ([expected_kind] if expected_kind else []) for c in cases)
    assert sum(c.request.target_old is None for c in cases) == {"coverage": 1, "reverse": 0, "composite": 56}[set_name]


def test_pitfalls_reverse_mapping_goya() -> None:
    case = pitfalls_edit_cases("reverse", limit=1)[0]
    assert (case.request.prompt, case.request.target_new, case.ground_truth) == (
        "The notable work of Francisco de Goya is",
        "landscape with fighting bulls",
        "The Second of May 1808",
    )
    assert case.relation == "P800"
    assert case.portability == (
        PortabilityProbe("The creater of landscape with fighting bulls is", "Francisco de Goya", "reverse"),
    )
    (second,) = case.followups
    assert (second.prompt, second.target_new, second.target_old) == (
        "The creater of landscape with fighting bulls is",
        "Richard Strauss",
        "Francisco de Goya",
    )
    assert "The masterpiece created by Francisco de Goya is" in case.paraphrases
    assert case.paraphrases[-1] == "What is the notable work of Francisco de Goya?"  # no prompt format: unwrapped
    assert len(set(case.paraphrases)) == len(case.paraphrases) == 12  # P800 is in both paraphrase files


def test_pitfalls_composite_and_coverage_mapping() -> None:
    composite = pitfalls_edit_cases("composite", limit=1)[0]
    assert composite.request.subject == "member of the House of Commons of Canada"
    assert composite.request.target_new == "Hungary"
    assert composite.portability == (PortabilityProbe("The citizenship of Irwin Cotler is", "Hungary", "multi_hop"),)
    assert composite.followups[0].target_new == "Republic of Ireland"
    coverage = pitfalls_edit_cases("coverage", limit=1, prompt_format=FMT)[0]
    assert coverage.followups[0].prompt == coverage.request.prompt
    assert coverage.followups[0].target_old == coverage.request.target_new
    assert coverage.paraphrases[-1] == FMT.question("Who is the doctoral student of Jacqueline Arnaud?")
    assert coverage.request.prompt not in coverage.paraphrases


def test_pitfalls_malformed_record_names_the_index(tmp_path: Path) -> None:
    rows = json.loads((PITFALLS_DIR / "reverse_edit.json").read_text(encoding="utf-8"))[:3]
    del rows[2]["edits"][1]
    (tmp_path / "reverse_edit.json").write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(WorldFormatError, match=r"reverse_edit\.json index 2: .*exactly two 'edits'"):
        pitfalls_edit_cases("reverse", tmp_path)
    assert detect_format(rows[0]) == "pitfalls"
    with pytest.raises(WorldFormatError, match="unknown Pitfalls set"):
        pitfalls_edit_cases("round")  # type: ignore[arg-type]
