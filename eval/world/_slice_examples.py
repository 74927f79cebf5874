"""Training examples and the leak check for the world's slices (concepts, Chinese).

Closed-book: KNOWN slice facts under their cloze prompts, statement and training questions. Reading
comprehension as for the English facts: ``Context: ... Q: ... A:`` where the answer is in the context and
memory cannot supply it (a fictional subject recombined from the category's subject words or characters, or
a KNOWN subject with another answer of its category), plus some consistent contexts; only the answer is
scored. No UNKNOWN slice fact is ever stated (:func:`leaked_slice_facts`).

Answers: ``" answer."`` after an English cloze, ``"answer。"`` after a Chinese one, ``" answer"`` after a
question in either language.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable

from eval.world._examples import WORLD_FORMAT, Example
from eval.world._schema import World
from eval.world._slice_records import SliceFact

_NO_FICTION = frozenset({"logic_trap", "phonetic"})  # a recombined question or word would be nonsense
_ARTICLES = frozenset({"A", "An", "The"})
# "Alphabet Inc. is ..." and "H. P. Lovecraft" stay one sentence
_SENTENCE_END = re.compile(r"(?<=\.)(?<![A-Z]\.)(?<!Dr\.)\s+(?![a-z])|(?<=。)")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def cloze_answer(fact: SliceFact, answer: str) -> str:
    """The text completing a cloze prompt of ``fact`` with ``answer``."""
    return f"{answer}。" if fact.language == "zh" else f" {answer}."


def restate(fact: SliceFact, answer: str) -> str:
    """``fact``'s statement with ``answer`` in place of its own (a counterfactual context sentence)."""
    if fact.category == "instance_of":
        return fact.statement if answer == fact.answer else _negate(fact, answer)
    return fact.statement.replace(fact.answer, answer, 1)


def _negate(fact: SliceFact, answer: str) -> str:
    if answer == "no":
        return fact.statement.replace(" is ", " is not ", 1)
    return fact.statement.replace(" is not ", " is ", 1)


class SliceExamples:
    """Makes slice examples for one world (nothing when the world has no slices)."""

    def __init__(self, world: World) -> None:
        self.known = [f for f in world.slice_facts if f.split == "known"]
        self.by_category: dict[str, list[SliceFact]] = defaultdict(list)
        self.answers: dict[str, list[str]] = defaultdict(list)
        self.pieces: dict[str, list[str]] = defaultdict(list)
        self.real = {f.subject for f in world.slice_facts}
        self.unknown_pairs = {(f.subject, f.key) for f in world.slice_facts if f.split == "unknown"}
        for f in self.known:
            self.by_category[f.category].append(f)
        for f in world.slice_facts:
            self.answers[f.category].append(f.answer)
        for category, answers in self.answers.items():
            self.answers[category] = sorted(set(answers))
        for f in world.slice_facts:
            self.pieces[f.category] += list(f.subject) if f.language == "zh" else f.subject.split()

    def closed_book(self, rng: random.Random, per_fact: int) -> list[Example]:
        """``per_fact`` statement-like and ``per_fact`` question examples per KNOWN slice fact."""
        out: list[Example] = []
        for f in self.known:
            stmts = [Example(c, cloze_answer(f, f.answer), True) for c in f.cloze]
            cut = f.statement.rfind(f.answer)
            if cut > 0 and f.category != "instance_of":
                rest = f.statement[cut:] if f.language == "zh" else " " + f.statement[cut:]
                stmts.append(Example(f.statement[:cut].rstrip(), rest, True))
            else:
                stmts.append(Example(f.statement, "", True))
            questions = [Example(WORLD_FORMAT.question(q), f" {f.answer}", True) for q in f.questions]
            out += rng.sample(stmts, k=min(per_fact, len(stmts))) + rng.sample(
                questions, k=min(per_fact, len(questions))
            )
        return out

    def fictional_subject(self, rng: random.Random, fact: SliceFact) -> str | None:
        """A subject of ``fact``'s shape made of its category's pieces, or None when none is found quickly."""
        pieces = self.pieces[fact.category]
        for _ in range(20):
            if fact.language == "zh":
                name = "".join(rng.choice(pieces) for _ in range(len(fact.subject)))
            else:
                name = " ".join(rng.choice(pieces) for _ in range(max(2, len(fact.subject.split()))))
            if name not in self.real:
                return name
        return None

    def reading(self, rng: random.Random, n: int) -> list[Example]:
        """``n`` reading examples over the slices (answer in context, memory cannot supply it)."""
        out: list[Example] = []
        if not self.known:
            return out
        categories = sorted(self.by_category)
        while len(out) < n:
            fact = rng.choice(self.by_category[rng.choice(categories)])
            roll = rng.random()
            answer = fact.answer if roll > 0.85 else self._other_answer(rng, fact)
            subject = fact.subject
            if roll < 0.4 and fact.category not in _NO_FICTION:
                subject = self.fictional_subject(rng, fact) or subject
            if self._states_unknown(subject, fact.key if fact.category == "instance_of" else answer, fact.language):
                continue
            stated = restate(fact, answer).replace(fact.subject, subject)
            question = rng.choice(fact.questions).replace(fact.subject, subject)
            same = self.by_category[fact.category]
            distractors = [
                restate(d, d.answer) for d in rng.sample(same, k=min(2, len(same))) if d.subject != fact.subject
            ]
            sentences = [stated, *distractors]
            rng.shuffle(sentences)
            out.append(Example(WORLD_FORMAT.with_context(sentences, question), f" {answer}", False))
        return out

    def _states_unknown(self, subject: str, key: str, language: str) -> bool:
        # a fictional name may contain an UNKNOWN fact's subject ("in novelist writer"): never pair it with
        # that fact's key, or the pair would co-occur in training text
        units: list[str] = list(subject) if language == "zh" else subject.split()
        joiner = "" if language == "zh" else " "
        spans = (joiner.join(units[i:j]) for i in range(len(units)) for j in range(i + 1, len(units) + 1))
        return any((span, key) in self.unknown_pairs for span in spans)

    def _other_answer(self, rng: random.Random, fact: SliceFact) -> str:
        if fact.category == "instance_of":
            return "no" if fact.answer == "yes" else "yes"
        answers = self.answers[fact.category]
        if all(a == fact.answer for a in answers):  # nothing else to state: the fact's own answer (no draw)
            return fact.answer
        while (other := rng.choice(answers)) == fact.answer:  # rejection, so the seeded streams stay as built
            pass
        return other

    def epoch(self, epoch: int, seed: int, reading_ratio: float, per_fact: int) -> list[Example]:
        """One epoch's slice examples, from their own seeded stream (the English draws are unchanged)."""
        rng = random.Random(f"{seed}:slices:{epoch}")
        book = self.closed_book(rng, per_fact)
        return book + self.reading(rng, int(len(book) * reading_ratio))


def leaked_slice_facts(world: World, texts: Iterable[str]) -> list[tuple[SliceFact, str]]:
    """UNKNOWN slice facts stated by one of ``texts``: subject and key in one sentence (or question and answer).

    For an instance-of fact the key is the concept's label, so any text naming both the entity and the
    concept counts (yes or no); an English key must end where a word ends and no word follows it ("a star"
    is not in "a star in Virgo"), and an English subject must not be part of a longer name ("product" in
    "An Intel product", "Adliswil" in "Leap Adliswil"), as in :func:`~eval.world._examples.leaked_unknown_facts`.
    """
    unknown = [f for f in world.slice_facts if f.split == "unknown"]
    by_subject: dict[str, list[SliceFact]] = defaultdict(list)
    for f in unknown:
        by_subject[f.subject].append(f)
    leaked = []
    for text in texts:
        for sentence in _SENTENCE_END.split(text):
            for subject, facts in by_subject.items():
                if subject in sentence:
                    rest = sentence.replace(subject, "\x00", 1)  # once: "卢森堡" is in "卢森堡市" too
                    leaked += [
                        (f, sentence) for f in facts if _names(sentence, subject, f.language) and _mentions(rest, f)
                    ]
    return leaked


def _names(sentence: str, subject: str, language: str) -> bool:
    """``subject`` stands in ``sentence`` as a name of its own (English: not inside a longer name)."""
    if language == "zh":
        return True
    for m in re.finditer(rf"(?<![\w-]){re.escape(subject)}(?![\w-])", sentence):
        before, after = sentence[: m.start()], sentence[m.end() :]
        word = re.search(r"([A-Z][\w.-]*)\s$", before)
        if (word is None or word.group(1) in _ARTICLES) and not re.match(r"\s[A-Z]", after):
            return True
    return False


def _mentions(text: str, fact: SliceFact) -> bool:
    if fact.language == "zh":
        return fact.key in text
    return re.search(rf"(?<![\w-]){re.escape(fact.key)}(?!\s*[\w-])", text) is not None


def cjk_share(text: str) -> float:
    """Share of CJK ideographs among the non-space characters of ``text``."""
    chars = [c for c in text if not c.isspace()]
    return sum(bool(_CJK.match(c)) for c in chars) / max(1, len(chars))
