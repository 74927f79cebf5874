"""Entity linking (label, alias, embedding) and relation linking (templates, embedding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from kg._linking import EntityLinker, _decomposed, name_key, normalize_mention
from kg._records import Entity
from kg._relation_linking import RelationLinker
from tools.errors import InvalidInputError


def _entity(label: str, *aliases: str) -> Entity:
    return Entity(f"https://factagent.dev/entity/{label.replace(' ', '_')}", label, tuple(aliases))


ENTITIES = [
    _entity("Beyoncé", "Beyoncé Knowles", "Queen B"),
    _entity("Eiffel Tower"),
    _entity("Paris"),
    _entity("Paris Hilton"),
    _entity("Danielle Darrieux"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("  Beyoncé   Knowles! ", "beyonce knowles"), ("EIFFEL-tower", "eiffel tower"), ("Z̄ürich", "zurich")],
)
def test_normalize_folds_case_accents_punctuation(text: str, expected: str) -> None:
    assert normalize_mention(text) == expected


def test_ascii_text_folds_as_through_unicode_decomposition() -> None:
    import unicodedata

    text = "".join(chr(i) for i in range(128)) + " Who is the CEO of Yum! Brands? 'x' Coca-Cola C++"
    general = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    assert text.isascii() and _decomposed(text) == general
    assert _decomposed("Zürich 法國") == "Zurich  法  国 "  # the general path for the rest
    assert name_key("Yum! Brands") == "yum brands" and normalize_mention("Beyoncé") == "beyonce"


def test_label_beats_alias_and_both_are_found() -> None:
    linker = EntityLinker(ENTITIES)
    assert [(lk.entity.label, lk.method) for lk in linker.link("beyonce")] == [("Beyoncé", "label")]
    assert [(lk.entity.label, lk.method) for lk in linker.link("queen b")] == [("Beyoncé", "alias")]
    assert linker.link("nobody at all") == []  # no embedder: no fuzzy stage


def test_re_adding_an_entity_replaces_its_aliases() -> None:
    linker = EntityLinker(ENTITIES)
    linker.add(_entity("Beyoncé", "Sasha Fierce"))
    assert linker.link("queen b") == []
    assert linker.link("sasha fierce")[0].entity.label == "Beyoncé"
    assert len(linker) == len(ENTITIES)


def test_find_mentions_prefers_the_longest_name() -> None:
    linker = EntityLinker(ENTITIES)
    mentions = linker.find_mentions("Is Paris Hilton older than the Eiffel Tower in Paris?")
    assert [m.link.entity.label for m in mentions] == ["Paris Hilton", "Eiffel Tower", "Paris"]


@pytest.mark.parametrize("bad", ["", "   ", "x" * 1001, 7])
def test_bad_mentions_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        EntityLinker(ENTITIES).link(bad)


def test_embedding_stage_links_a_misspelling(minilm: Any) -> None:
    linker = EntityLinker(ENTITIES, minilm, min_similarity=0.6)
    links = linker.link("Daniele Darieux")
    assert links and links[0].entity.label == "Danielle Darrieux" and links[0].method == "embedding"
    assert EntityLinker(ENTITIES, minilm, min_similarity=0.99).link("a sandwich") == []


TEMPLATES = {
    "company_ceo": ["Who is the CEO of {}?", "{}'s CEO is"],
    "company_hq": ["Where is {} headquartered?", "{} is headquartered in the city of"],
    "person_mother": ["Who is the mother of {}?"],
}


def test_relation_exact_template_match() -> None:
    links = RelationLinker(TEMPLATES).link("Who is the CEO of Acme Corp?", "Acme Corp")
    assert [(r.relation, r.score) for r in links] == [("company_ceo", 1.0)]
    assert RelationLinker(TEMPLATES).link("Who runs Acme Corp?", "Acme Corp") == []


def test_relation_paraphrase_by_embedding(minilm: Any) -> None:
    linker = RelationLinker(TEMPLATES, minilm)
    assert linker.link("Who runs Acme Corp as chief executive?", "Acme Corp")[0].relation == "company_ceo"
    assert linker.link("In which city is Acme Corp based?", "Acme Corp")[0].relation == "company_hq"
    assert linker.link("Who gave birth to Ada?", "Ada")[0].relation == "person_mother"


def test_embedding_text_is_what_link_embeds(minilm: Any) -> None:
    seen: list[list[str]] = []

    class Spy:
        name = "spy"
        dimension = 384

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            seen.append(list(texts))
            return np.asarray(minilm.embed(texts))

    linker = RelationLinker(TEMPLATES, Spy())
    linker.link("Who is Acme Corp's boss?", "Acme Corp")  # the template matrix
    seen.clear()
    assert linker.embedding_text("Who is the CEO of Acme Corp?", "Acme Corp") is None  # exact: nothing embedded
    linker.link("Who is the CEO of Acme Corp?", "Acme Corp")
    assert seen == []
    text = linker.embedding_text("Who runs Acme Corp as chief executive?", "Acme Corp")
    assert text == "who runs x as chief executive"
    linker.link("Who runs Acme Corp as chief executive?", "Acme Corp")
    assert seen == [[text]]
    assert RelationLinker(TEMPLATES).embedding_text("Who runs Acme Corp?", "Acme Corp") is None  # no embedder


def test_template_without_slot_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        RelationLinker({"company_ceo": ["Who is the CEO?"]})


def test_a_namespaces_names_link_only_for_readers_of_it() -> None:
    """Issue 16, gap 1: one tenant's spelling or alias never links for (nor is shown to) another."""
    world = Entity("https://factagent.dev/entity/Acme", "Acme", ("Acme Corp",))
    linker = EntityLinker([world])
    linker.add(Entity(world.iri, "Acme", ("Project Falcon",)), namespace="alice")
    linker.add(Entity("https://factagent.dev/entity/QuuxCorp", "QuuxCorp"), namespace="alice")
    bob, alice = ["bob", "world"], ["alice", "world"]
    assert linker.link("quuxcorp", namespaces=bob) == [] and linker.link("project falcon", namespaces=bob) == []
    assert linker.link("acme", namespaces=bob)[0].entity.aliases == ("Acme Corp",)  # not alice's alias
    assert linker.link("project falcon", namespaces=alice)[0].entity.aliases == ("Acme Corp", "Project Falcon")
    assert linker.find_mentions("Who runs QuuxCorp?", namespaces=bob) == []
    with linker.scoped(bob):
        assert linker.link("quuxcorp") == []
    assert [link.entity.label for link in linker.link("quuxcorp")] == ["QuuxCorp"]  # no scope: every namespace
