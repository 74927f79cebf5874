"""Free phrasings for *evaluation only*: how a person might tell each relation, never used in training.

Written apart from the reader's training phrasings (``agent/tell/_reader_data.py``) and the schema's own
templates (``kg/schema/world.ttl``); ``tests/eval/test_free_phrasings.py`` checks that none of these is in
either, also once the interpreter has cleaned both ("These days X is run by Y." is "X is run by Y." to the
reader, so no training phrasing may clean to that either), and that no code under ``agent/`` reads this
module. Two phrasings that cleaned to a schema template were replaced (they measured the templates).
``{s}`` is the subject, ``{o}`` the object. They cover active and passive voice, object first, possessives,
relative clauses, "now", "these days", "took over", "moved to" and abbreviated relation words.
"""

from __future__ import annotations

from eval.world._schema import Edit

__all__ = ["FREE_PHRASINGS", "free_statement"]

FREE_PHRASINGS: dict[str, tuple[str, ...]] = {
    "company_ceo": (
        "{o} took over as chief executive of {s}.", "{s}'s new boss is {o}.", "These days {s} is run by {o}.",
        "{o} has been named CEO at {s}.", "The person now running {s} is {o}.", "{s} is led by its CEO {o} now.",
    ),
    "company_hq": (
        "{s} moved its head office to {o}.", "{s} is now headquartered out of {o}.",
        "These days {s} has its HQ in {o}.", "{o} is now the home of {s}'s headquarters.",
        "The company {s}, which is based in {o}, is growing.", "{s}'s main offices are in {o} now.",
    ),
    "landmark_in_country": (
        "{s} is found in {o}.", "{o} is the country {s} is in.", "{s} is a landmark located in {o}.",
        "These days you will find {s} in {o}.", "The landmark {s}, in {o}, is popular.", "{s} is located within {o}.",
    ),
    "person_father": (
        "{s}'s father these days is listed as {o}.", "{o} is {s}'s dad.", "The dad of {s} is named {o}.",
        "{s} is a child of {o}, the father.",
        "{s} was fathered by {o}.", "{s}, whose dad is {o}, lives abroad.",
    ),
    "person_mother": (
        "{s}'s mother, it turns out, is {o}.", "{o} is {s}'s mum.", "{s} was born to {o}, the mother.",
        "The mum of {s} is named {o}.", "{s}'s mom is called {o}.", "{s}, whose mum is {o}, lives abroad.",
    ),
    "person_native_language": (
        "{s}'s native lang. is {o}.", "{s} grew up with {o} as a first language.", "{s} speaks {o} as a mother tongue.",
        "{o} is the mother tongue of {s}.", "{s} is a native {o} speaker.", "The language {s} grew up with is {o}.",
    ),
    "person_occupation": (
        "{s} is now a {o}.", "These days {s} earns a crust as a {o}.", "{s}'s line of work is {o}.",
        "{s} is a working {o}.", "{s} has a job as a {o}.", "{s} moved into work as a {o}.",
    ),
    "product_by_company": (
        "{s} is produced these days by {o}.", "{o} is the company that makes {s}.", "{s} is built by {o}.",
        "{s} is made by {o} these days.", "{o} is behind {s}.", "{s} was manufactured by {o}.",
    ),
    "star_constellation": (
        "{s} is in the constellation {o}.", "{o} is the constellation containing {s}.",
        "{s} is a star that sits in {o}.", "The star {s} belongs to {o}.", "{s} appears in the constellation {o}.",
        "{s} is a star within {o}.",
    ),
    "person_plays_position_in_sport": (
        "{s} took over as the team's {o}.", "{s} has played {o} since the transfer.", "{s} moved to {o} this season.",
        "{s}'s pos. on the team is {o}.", "These days {s} plays at {o}.", "{s} is fielded as a {o}.",
    ),
    "superhero_archnemesis": (
        "{s}'s archenemy is {o}.", "{o} is {s}'s arch-nemesis.", "{s}'s biggest enemy is {o}.",
        "{s} has {o} as an arch-foe.", "{o} is the nemesis of {s}.", "{s} is always battling {o}.",
    ),
    "person_university": (
        "{s} attended university at {o}.", "{s} is a graduate from {o}.", "{s} studied at {o} as a student.",
        "{o} is where {s} went to university.", "{s}'s university was {o}.", "{s} went to uni at {o}.",
    ),
    "spouse": (
        "{s} and {o} have been husband and wife since last year.", "{o} is the spouse of {s}.",
        "{s} got married to {o} last year.",
        "{s}'s better half is {o}.", "{s} has married {o}.", "{s} and {o} got married.",
    ),
    "doctoral_advisor": (
        "{s}'s doctoral advisor was {o}.", "{s} wrote a doctorate supervised by {o}.", "{s}'s PhD supervisor was {o}.",
        "{s} earned a doctorate under {o}.", "{s} was a PhD student under {o}.", "{s}'s thesis was supervised by {o}.",
    ),
    "doctoral_student": (
        "{s} was the PhD supervisor for {o}.", "{s} was doctoral advisor to {o}.", "{s} had {o} as a PhD student.",
        "{s} advised {o} on a doctorate.", "{o} wrote a PhD under {s}.", "{s}'s PhD students included {o}.",
    ),
    "notable_work": (
        "{s} is known for {o}.", "{s}'s best-known work is {o}.", "{s} is famous for the work {o}.",
        "One of {s}'s famous works is {o}.", "{s} created the work {o}.", "{s} is well known for {o}.",
    ),
    "creator": (
        "{s} was created by the artist {o} himself.", "{s} is an artwork by {o}.",
        "{o} is the creator of the work {s}.",
        "{s} came from the hand of {o}.", "{o} made the work {s}.", "The creator of {s} was {o}.",
    ),
}  # fmt: skip


def free_statement(edit: Edit, index: int) -> str:
    """How a person tells ``edit`` in their own words: the relation's ``index``-th free phrasing (cycling).

    Raises:
        KeyError: the relation has no free phrasings.
    """
    phrasings = FREE_PHRASINGS[edit.relation]
    phrasing = phrasings[index % len(phrasings)]
    if " a {o}" in phrasing and edit.new_object[:1].lower() in "aeiou":
        phrasing = phrasing.replace(" a {o}", " an {o}")
    return phrasing.replace("{s}", edit.subject).replace("{o}", edit.new_object)
