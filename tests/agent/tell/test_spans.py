"""Name spans: snapping a tagger's run to a whole capitalised name, and where a conjunction splits two names."""

from __future__ import annotations

from agent.tell._spans import snap_to_name, widen


def _snap(text: str, piece: str, **kw: object) -> str:
    start = text.index(piece)
    span = snap_to_name(text, start, start + len(piece), **kw)  # type: ignore[arg-type]
    assert span is not None
    return text[span[0] : span[1]]


def test_a_name_is_stretched_to_its_run_of_capitalised_words_and_connectors() -> None:
    assert _snap("Emma Kohlmann is known for Bacchus and Ariadne.", "Bacchus") == "Bacchus and Ariadne"
    assert _snap("Margaret of Bar married him.", "Margaret") == "Margaret of Bar"


def test_a_conjunction_splits_two_names_when_the_second_has_the_other_role() -> None:
    text = "Jane Roe and Bob Smith got married."
    bob = (text.index("Bob"), text.index("Bob") + 3)
    assert _snap(text, "Jane") == "Jane Roe and Bob Smith"  # nothing says otherwise: one name
    assert _snap(text, "Jane", other=[bob]) == "Jane Roe"
    # a word the tagger gives the other role still joins a directly adjacent capitalised word (one name split
    # by the tagger), only a connector between them splits
    assert _snap("Bob Smith plays at forward.", "Smith", other=[(0, 3)]) == "Bob Smith"


def test_the_other_name_never_joins() -> None:
    text = "Cindy Crawford Emma Stone wed."
    taken = (text.index("Emma"), len("Cindy Crawford Emma Stone"))
    assert _snap(text, "Cindy", blocked=[taken]) == "Cindy Crawford"


def test_a_title_the_tagger_puts_outside_does_not_join_from_before_but_a_name_tail_does() -> None:
    text = "Toshiba is led by its CEO Jane Roe."
    ceo = (text.index("CEO"), text.index("CEO") + 3)
    assert _snap(text, "Jane Roe") == "CEO Jane Roe"
    assert _snap(text, "Jane Roe", no_prefix=[ceo]) == "Jane Roe"
    tail = "Pat wed Charles Beale the Elder last year."
    elder = (tail.index("Elder"), tail.index("Elder") + 5)
    assert _snap(tail, "Charles Beale", no_prefix=[elder]) == "Charles Beale the Elder"


def test_widen_drops_a_type_noun_before_a_name_and_a_trailing_reflexive() -> None:
    text = "Jane Roe is the creator of the work Body of Air."
    start = text.index("the work")
    span = widen(text, start, len(text) - 1)
    assert span is not None and text[span[0] : span[1]] == "Body of Air"
    text = "It was painted by the artist Raphael himself."
    span = widen(text, text.index("Raphael"), len(text) - 1)
    assert span is not None and text[span[0] : span[1]] == "Raphael"
    text = "The work was done by Work Horse Ltd."  # a capitalised "Work" is a name's own word
    span = widen(text, text.index("Work Horse"), len(text) - 1)
    assert span is not None and text[span[0] : span[1]] == "Work Horse Ltd."
