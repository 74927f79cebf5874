"""Training sentences for the learned reader (:mod:`agent.tell._reader`): phrasings, names, negatives.

Each phrasing states one relation with ``{s}`` (subject) and ``{o}`` (object) slots, in the forms people use:
active and passive voice, object first, possessives, relative clauses, "took over", "moved to", "these
days", abbreviations of relation words. Sentences are made by filling the slots with names of the world's
facts of that relation, optionally wrapped in discourse markers ("Actually, ...", "... now").

These phrasings are for *training only*. The benchmark's free phrasings (``eval/agent_bench/
_free_phrasings.py``) are written separately and never read here; ``tests/eval/test_free_phrasings.py``
checks that no phrasing is in both sets, nor in the schema's own templates.

``NONE`` sentences mention names but state none of the schema's relations (the reader must abstain).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["NEGATIVE_PHRASINGS", "NONE", "TRAINING_PHRASINGS", "Example", "make_examples", "render"]

NONE = "none"

TRAINING_PHRASINGS: dict[str, tuple[str, ...]] = {
    "company_ceo": (
        "{o} is the CEO of {s}", "{o} became chief executive of {s}", "{o} took over as CEO of {s}",
        "{s} is now run by {o}", "{s}'s chief executive is {o}", "{s} named {o} as its new CEO",
        "{s} appointed {o} chief executive", "{s} has a new boss, {o}", "{o} now leads {s} as CEO",
        "{o} heads {s}", "The top executive at {s} is {o}", "{o} was appointed CEO of {s}",
        "{o} runs {s}", "{o} is {s}'s chief executive officer", "{s} is headed by {o}",
        "{s}, whose CEO is {o}, is hiring", "{o}, who runs {s}, spoke today", "{s}'s new CEO is {o}",
        "{o} is in charge at {s}", "{s} CEO {o} resigned from the board of a charity",
    ),
    "company_hq": (
        "{s} is based in {o}", "{s} has its headquarters in {o}", "{s} moved its headquarters to {o}",
        "{s} relocated to {o}", "{o} is where {s} is headquartered", "{s}'s HQ is in {o}",
        "{s} has moved to {o}", "{o} is home to the headquarters of {s}", "{s} keeps its main office in {o}",
        "{s}, headquartered in {o}, reported earnings", "{s} now operates out of {o}",
        "The main office of {s} is now in {o}", "{s} runs its business from {o}", "{s}'s head office moved to {o}",
        "{s} has its HQ in {o}", "{s} set up its headquarters in {o}",
    ),
    "landmark_in_country": (
        "{s} is in {o}", "{s} is located in {o}", "{s} lies in {o}", "{o} is home to {s}",
        "{s} is situated in {o}", "You can visit {s} in {o}", "{o} is the country where {s} stands",
        "{s}, which is in {o}, draws many visitors", "{s} belongs to {o}", "{s} can be visited in {o}",
        "{s} is a landmark of {o}", "The country of {s} is {o}", "{s} sits in {o}",
    ),
    "person_father": (
        "{o} is the father of {s}", "{s}'s dad is {o}", "{o} fathered {s}", "{s} was born to father {o}",
        "{s}'s father was {o}", "{o} is {s}'s father", "{o} is the dad of {s}", "{s}'s pa is {o}",
        "{o}, the father of {s}, died young", "{s}, whose father is {o}, grew up in the city",
        "{s} is the son of a man named {o}", "{s} calls {o} his father",
    ),
    "person_mother": (
        "{o} is the mother of {s}", "{s}'s mum is {o}", "{o} gave birth to {s}", "{s}'s mother was {o}",
        "{o} is {s}'s mom", "{s} was born to mother {o}", "{o} is the mom of {s}", "{s}'s ma is {o}",
        "{o}, the mother of {s}, lives abroad", "{s}, whose mother is {o}, grew up in the city",
        "{s} is the daughter of a woman named {o}", "{s} calls {o} her mother",
    ),
    "person_native_language": (
        "{s} is a native speaker of {o}", "{s}'s mother tongue is {o}", "{s} speaks {o} natively",
        "{o} is {s}'s first language", "{s} was raised speaking {o}", "The first language of {s} is {o}",
        "{s} learned {o} as a child", "{s}'s native tongue is {o}", "{o} is the native language of {s}",
        "{s}, a native {o} speaker, gave a talk",
    ),
    "person_occupation": (
        "{s} is a {o} by profession", "{s} works as {o}", "{s}'s job is {o}", "{s} earns a living as a {o}",
        "{s} is employed as a {o}", "By profession, {s} is a {o}", "{s} has become a {o}",
        "{s} switched careers and is now a {o}", "{s} makes a living as a {o}", "{s}'s profession is {o}",
        "{s} works professionally as a {o}", "{s} trained as a {o} and works as one",
    ),
    "product_by_company": (
        "{s} is made by {o}", "{o} makes {s}", "{o} manufactures {s}", "{s} is manufactured by {o}",
        "{o} produces {s}", "{s} comes from {o}", "{s}, a product of {o}, sells well", "{o} developed {s}",
        "{s} was built by {o}", "{s} is produced by {o}", "{o} is the maker of {s}", "{s}'s maker is {o}",
        "{s} is now made by {o}",
    ),
    "star_constellation": (
        "{s} is a star in {o}", "{s} lies in the constellation of {o}", "{s} belongs to the constellation {o}",
        "{o} contains the star {s}", "{s} can be seen in {o}", "{s} is part of the constellation {o}",
        "The star {s} lies in {o}", "{s} is found in the constellation {o}", "{s} shines in {o}",
        "{s}'s constellation is {o}", "{s} is one of the stars of {o}",
    ),
    "person_plays_position_in_sport": (
        "{s} plays {o}", "{s} lines up as a {o}", "{s}'s position is {o}", "{s} plays in the {o} position",
        "{s} now plays as {o}", "{s} has moved to {o}", "{s} is used as a {o} by his team",
        "{s} was switched to {o}", "{s} plays as the team's {o}", "{s} usually plays at {o}",
        "The coach moved {s} to {o}", "{s} has been playing {o} this season",
    ),
    "superhero_archnemesis": (
        "{s}'s arch-enemy is {o}", "{o} is the archenemy of {s}", "{s} battles {o}", "{o} is {s}'s nemesis",
        "{s}'s greatest foe is {o}", "{s}'s arch-rival is {o}", "{o} is the main villain {s} fights",
        "{s}, whose nemesis is {o}, saved the city", "{o} is the worst enemy of {s}", "{s} always fights {o}",
    ),
    "person_university": (
        "{s} studied at {o}", "{s} graduated from {o}", "{s} is an alumnus of {o}", "{s} went to {o}",
        "{o} is {s}'s alma mater", "{s} got a degree from {o}", "{s} was educated at {o}",
        "{s} is a graduate of {o}", "{s} did a degree at {o}", "{s} enrolled at {o}",
        "{s}'s uni was {o}",
    ),
    "spouse": (
        "{s} married {o}", "{s}'s wife is {o}", "{s}'s husband is {o}", "{s} is the husband of {o}",
        "{s} and {o} are married", "{s} tied the knot with {o}", "{s} wed {o}", "{o} is {s}'s spouse",
        "{s} is the wife of {o}", "{s} got married to {o}", "{s}, who is married to {o}, lives in town",
        "{s}'s partner in marriage is {o}",
    ),
    "doctoral_advisor": (
        "{s}'s PhD advisor was {o}", "{s} did a doctorate under {o}", "{s}'s thesis advisor was {o}",
        "{s} earned a PhD with {o} as advisor", "{s} was a doctoral student of {o}",
        "{s}'s doctoral supervisor was {o}", "{s} completed a PhD under {o}", "{s} was supervised by {o}",
        "{s} did a PhD with {o}", "{s}'s Ph.D. adviser was {o}",
    ),
    "doctoral_student": (
        "{s} supervised {o}", "{s} was the PhD supervisor of {o}", "{s} advised {o}'s doctoral thesis",
        "{s}'s doctoral students include {o}", "{s} mentored {o} through a PhD", "{o} did a PhD under {s}",
        "{s} supervised the thesis of {o}", "One of {s}'s PhD students is {o}",
        "{s} was the doctoral advisor of {o}",
    ),
    "notable_work": (
        "{s} wrote {o}", "{s} is famous for {o}", "{o} is one of {s}'s best-known works", "{s} is best known for {o}",
        "{s} composed {o}", "{s} painted {o}", "{s}'s most famous work is {o}", "{s} is remembered for {o}",
        "{s} authored {o}", "Among the works of {s} is {o}",
    ),
    "creator": (
        "{s} was painted by {o}", "{s} is the work of {o}", "{s} was written by {o}", "{o} is the author of {s}",
        "{s} was designed by {o}", "{o} created {s}", "{s} is by {o}", "{s} was made by the artist {o}",
        "The artist behind {s} is {o}", "{s} was composed by {o}", "{o} is the creator of {s}",
    ),
}  # fmt: skip

NEGATIVE_PHRASINGS: tuple[str, ...] = (
    "{s} opened a new office last year", "{s} likes {o}", "{s} met {o} at a party", "{s} announced record profits",
    "{s} visited {o}", "{o} criticised {s}", "{s} and {o} played tennis", "{s} is not the CEO of {o}",
    "{s} was never married to {o}", "{s} sued {o}", "{s} is a great company", "I had lunch with {s}",
    "{s} lost the match against {o}", "{s} bought shares of {o}", "{s} is bigger than {o}",
    "{s} wrote a letter to {o}", "{s} thanked {o}", "{s} is older than {o}", "{s} is on holiday",
    "{s} talked about {o} on TV", "My friend saw {s} yesterday", "{s} does not work for {o}",
    "{s} is no longer based anywhere", "{s} tweeted about {o}", "{s} sponsors {o}", "{s} competes with {o}",
    "{s} admires {o}", "{s} will visit {o} next week", "{s} donated money to {o}", "{s} interviewed {o}",
)  # fmt: skip

_PREFIXES = (
    "", "", "", "", "Actually, ", "FYI, ", "By the way, ", "Now ", "These days ", "As of this year, ",
    "Since last week, ", "Just so you know, ", "Update: ", "Note that ", "Breaking: ",
)  # fmt: skip
_SUFFIXES = ("", "", "", "", " now", " these days", " nowadays", " since March", " as of today")


@dataclass(frozen=True)
class Example:
    """One training sentence: the relation it states (or :data:`NONE`) and the character spans of its names."""

    text: str
    relation: str
    subject: tuple[int, int]  # (start, end) in ``text``; (0, 0) when the relation is NONE
    object: tuple[int, int]


def _article(phrasing: str, obj: str) -> str:
    """ "a {o}" -> "an {o}" before a vowel."""
    if obj[:1].lower() in "aeiou":
        return phrasing.replace(" a {o}", " an {o}")
    return phrasing


def render(phrasing: str, subject: str, obj: str, prefix: str = "", suffix: str = "") -> Example:
    """Fill ``phrasing`` and record where the names landed (``{s}`` and ``{o}`` each occur once)."""
    phrasing = _article(phrasing, obj)
    text = ""
    spans: dict[str, tuple[int, int]] = {}
    rest = phrasing
    while rest:
        i = min((rest.find(k) for k in ("{s}", "{o}") if k in rest), default=-1)
        if i < 0:
            text += rest
            break
        text += rest[:i]
        key, value = ("s", subject) if rest[i : i + 3] == "{s}" else ("o", obj)
        spans[key] = (len(text), len(text) + len(value))
        text += value
        rest = rest[i + 3 :]
    if prefix and text[:1].isupper() and prefix.rstrip().endswith((",", ":")) and text.split(" ")[0] in ("The",):
        text = text[0].lower() + text[1:]
    offset = len(prefix)
    full = prefix + text + suffix + "."
    s = spans.get("s", (-offset, -offset))
    o = spans.get("o", (-offset, -offset))
    return Example(full, "", (s[0] + offset, s[1] + offset), (o[0] + offset, o[1] + offset))


def make_examples(
    phrasings: Mapping[str, Sequence[str]],
    names: Mapping[str, Sequence[tuple[str, str]]],
    *,
    per_phrasing: int,
    negatives: Sequence[str] = NEGATIVE_PHRASINGS,
    per_negative: int = 0,
    seed: int = 0,
) -> list[Example]:
    """Sentences from every phrasing with names drawn (seeded) from that relation's ``(subject, object)`` pairs.

    Args:
        phrasings: relation id -> phrasings with ``{s}`` and ``{o}``.
        names: relation id -> (subject, object) name pairs to fill them with; objects are shuffled across
            pairs of the relation so a sentence never simply repeats one memorised fact.
        per_phrasing: sentences per phrasing.
        negatives: phrasings of no relation, filled with names of any relation.
        per_negative: sentences per negative phrasing.
        seed: the random seed (same inputs and seed -> same sentences).
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for relation in sorted(phrasings):
        pairs = list(names.get(relation, ()))
        if not pairs:
            continue
        objects = [o for _, o in pairs]
        for phrasing in phrasings[relation]:
            for _ in range(per_phrasing):
                subject = rng.choice(pairs)[0]
                obj = rng.choice(objects)
                ex = render(phrasing, subject, obj, rng.choice(_PREFIXES), rng.choice(_SUFFIXES))
                out.append(Example(ex.text, relation, ex.subject, ex.object))
    everyone = [name for r in sorted(names) for pair in names[r] for name in pair]
    for phrasing in negatives:
        for _ in range(per_negative):
            ex = render(phrasing, rng.choice(everyone), rng.choice(everyone), rng.choice(_PREFIXES))
            out.append(Example(ex.text, NONE, (0, 0), (0, 0)))
    return out
