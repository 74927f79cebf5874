"""Training examples for the reference models.

Each example is ``(prompt, answer)``; the answer is scored (loss) and, for closed-book statements, the
prompt too. Two kinds, mixed in every epoch:

* closed-book: KNOWN facts under the training cloze, statement and question templates (a few drawn per fact
  each epoch; the relations' paraphrase templates too when asked);
* reading comprehension: ``Context: s1 .. s4 / Q: ... / A: answer`` with 1-3 distractor sentences, where
  the answer is in the context and memory cannot supply it: fictional subjects (names recombined from real
  words), or KNOWN subjects stated with a counterfactual object. Only the answer is scored, so the model
  never memorises a counterfactual statement; a share of consistent contexts keeps memory and context
  agreeing when they do.

No UNKNOWN fact is ever stated: contexts use KNOWN facts or fictional subjects only
(:func:`leaked_unknown_facts` checks it).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from eval.world._build import fill
from eval.world._schema import Fact, Relation, World
from tools.lm import PromptFormat

WORLD_FORMAT = PromptFormat()


@dataclass(frozen=True)
class Example:
    """One training text: ``prompt`` then ``answer``. ``score_prompt`` adds the prompt to the loss."""

    prompt: str
    answer: str
    score_prompt: bool


def statement(relation: Relation, subject: str, obj: str, index: int) -> str:
    """A corpus sentence stating ``(subject, relation, obj)`` with statement template ``index``."""
    return relation.statements[index % len(relation.statements)].format(subject, obj)


class ExampleFactory:
    """Makes closed-book and reading examples for one world; seeded, so epochs are reproducible."""

    def __init__(self, world: World, seed: int) -> None:
        self.world = world
        self.seed = seed
        self.relations = {r.id: r for r in world.relations}
        self.known = world.facts_in("known")
        self.known_by_rel: dict[str, list[Fact]] = defaultdict(list)
        self.known_by_subject: dict[str, list[Fact]] = defaultdict(list)
        for fact in self.known:
            self.known_by_rel[fact.relation].append(fact)
            self.known_by_subject[fact.subject].append(fact)
        self.real_subjects = {f.subject for f in world.facts}
        self.unknown_pairs = {(f.subject, f.object) for f in world.facts_in("unknown")}
        self.subject_words: dict[str, list[str]] = {}
        self.objects: dict[str, list[str]] = {}
        self.subject_lengths: dict[str, list[int]] = {}
        for rel in world.relations:
            facts = [f for f in world.facts if f.relation == rel.id]
            self.subject_words[rel.id] = sorted({w for f in facts for w in f.subject.split()})
            self.objects[rel.id] = sorted({f.object for f in facts})
            self.subject_lengths[rel.id] = [len(f.subject.split()) for f in facts]
        from eval.world._slice_examples import SliceExamples  # it builds on this module's Example

        self.slices = SliceExamples(world)

    # ---- closed book -------------------------------------------------------------------------------
    def closed_book(
        self, rng: random.Random | None = None, per_fact: int = 0, paraphrases: bool = False
    ) -> list[Example]:
        """KNOWN facts under training templates (cloze, statement, question; and ``paraphrases`` if asked).

        With ``per_fact`` = 0 every template is used; otherwise ``per_fact`` statement-like and ``per_fact``
        question examples are drawn per fact with ``rng`` (a different phrasing mix each epoch).
        """
        out = []
        for fact in self.known:
            rel = self.relations[fact.relation]
            extra = rel.paraphrases if paraphrases else ()
            cloze = rel.cloze + tuple(t for t in extra if not t.endswith("?"))
            asked = rel.questions + tuple(t for t in extra if t.endswith("?"))
            stmts = [Example(fill(t, fact.subject), f" {fact.object}.", True) for t in cloze]
            for i in range(len(rel.statements)):
                sentence = statement(rel, fact.subject, fact.object, i)
                cut = sentence.rfind(fact.object)
                stmts.append(Example(sentence[:cut].rstrip(), " " + sentence[cut:], True))
            questions = [Example(WORLD_FORMAT.question(fill(q, fact.subject)), f" {fact.object}", True) for q in asked]
            if per_fact and rng is not None:
                stmts = rng.sample(stmts, k=min(per_fact, len(stmts)))
                questions = rng.sample(questions, k=min(per_fact, len(questions)))
            out += stmts + questions
        return out

    # ---- reading comprehension ---------------------------------------------------------------------
    def fictional_subject(self, rng: random.Random, relation: str) -> str:
        """A subject name that belongs to no real entity, made of words of this relation's subjects."""
        words = self.subject_words[relation]
        while True:
            n = max(1, rng.choice(self.subject_lengths[relation]))
            n = n if n > 1 or rng.random() < 0.5 else 2  # one-word pools ("Nokia") would repeat real names
            name = " ".join(rng.choice(words) for _ in range(n))
            if name not in self.real_subjects:
                return name

    def reading(self, rng: random.Random, n: int) -> list[Example]:
        """``n`` reading-comprehension examples (answer in context; memory cannot supply it)."""
        rel_ids = sorted(self.relations)
        out = []
        for _ in range(n):
            rel = self.relations[rng.choice(rel_ids)]
            roll = rng.random()
            if roll < 0.45:
                subject = self.fictional_subject(rng, rel.id)
                obj = rng.choice(self.objects[rel.id])
                if self._states_unknown(subject, obj):
                    continue
            else:
                fact = rng.choice(self.known_by_rel[rel.id])
                subject = fact.subject
                obj = fact.object if roll > 0.85 else self._other_object(rng, rel.id, fact.object)
            n_distractors = rng.choices((1, 2, 3), weights=(0.2, 0.3, 0.5))[0]
            distractors = rng.sample(self._distractors(rng, rel, subject), k=n_distractors)
            sentences = [statement(rel, subject, obj, rng.randrange(2)), *distractors]
            rng.shuffle(sentences)
            if rng.random() < 0.8:
                prompt = WORLD_FORMAT.with_context(sentences, fill(rng.choice(rel.questions), subject))
                out.append(Example(prompt, f" {obj}", False))
            else:
                prompt = WORLD_FORMAT.cloze_with_context(sentences, fill(rng.choice(rel.cloze), subject))
                out.append(Example(prompt, f" {obj}.", False))
        return out

    def _states_unknown(self, name: str, obj: str) -> bool:
        # a fictional name may contain an UNKNOWN subject ("Nokia" in "Nokia Vega"); never pair it with
        # that fact's object, or the pair would co-occur in training text
        words = name.split()
        spans = (" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1))
        return any((span, obj) in self.unknown_pairs for span in spans)

    def _other_object(self, rng: random.Random, relation: str, obj: str) -> str:
        while True:
            other = rng.choice(self.objects[relation])
            if other != obj:
                return other

    def _distractors(self, rng: random.Random, rel: Relation, subject: str) -> list[str]:
        # same relation, other subject: the question can only be answered by matching the subject
        other = rng.choice(self.known_by_rel[rel.id])
        out = [statement(rel, other.subject, other.object, rng.randrange(2))]
        # same subject, other relation: the question can only be answered by matching the relation
        own = [f for f in self.known_by_subject.get(subject, []) if f.relation != rel.id]
        if own:
            f = rng.choice(own)
            out.append(statement(self.relations[f.relation], f.subject, f.object, rng.randrange(2)))
        else:
            r2 = self.relations[rng.choice([r for r in sorted(self.relations) if r != rel.id])]
            obj2 = rng.choice(self.objects[r2.id])
            if self._states_unknown(subject, obj2):
                obj2 = rng.choice(self.objects[r2.id])  # a second draw: a repeat hit is vanishingly rare
            out.append(statement(r2, subject, obj2, rng.randrange(2)))
        # a random KNOWN fact
        f = rng.choice(self.known)
        out.append(statement(self.relations[f.relation], f.subject, f.object, rng.randrange(2)))
        return out

    def epoch(self, epoch: int, reading_ratio: float, per_fact: int = 2, paraphrases: bool = False) -> list[Example]:
        """Closed-book examples plus ``reading_ratio`` times as many reading examples, shuffled."""
        rng = random.Random(f"{self.seed}:epoch:{epoch}")
        book = self.closed_book(rng, per_fact, paraphrases)
        examples = book + self.reading(rng, int(len(book) * reading_ratio))
        examples += self.slices.epoch(epoch, self.seed, reading_ratio, per_fact)  # concepts and Chinese
        rng.shuffle(examples)
        return examples


def leaked_unknown_facts(world: World, texts: Iterable[str]) -> list[tuple[Fact, str]]:
    """UNKNOWN facts stated by one of ``texts``: subject and object in the same sentence (or question and
    answer), the subject standing as a name of its own (not a piece of a longer name such as "Raimu" in
    "Raimu Maurice" or "Andrea" in "Andrea Bocelli"). The reference models' training texts must give none.
    """
    by_subject: dict[str, list[Fact]] = defaultdict(list)
    for fact in world.facts_in("unknown"):
        by_subject[fact.subject].append(fact)
    leaked = []
    for text in texts:
        for sentence in _SENTENCE_END.split(text):
            for subject, facts in by_subject.items():
                if subject not in sentence:
                    continue
                for fact in facts:
                    if fact.object in sentence and _states(sentence, subject, fact.object):
                        leaked.append((fact, sentence))
    return leaked


_SENTENCE_END = re.compile(r"(?<=\.)\s+")


def _states(sentence: str, subject: str, obj: str) -> bool:
    objects = [(m.start(), m.end()) for m in re.finditer(re.escape(obj), sentence)]
    for m in re.finditer(rf"(?<![\w-]){re.escape(subject)}(?![\w-])", sentence):
        before, after = sentence[: m.start()], sentence[m.end() :]
        if re.search(r"[A-Z][\w.-]*\s$", before) or re.match(r"\s[A-Z]", after):
            continue  # part of a longer name
        if any(o_start <= m.start() and m.end() <= o_end for o_start, o_end in objects):
            continue  # inside the object itself
        if any(o_end <= m.start() or m.end() <= o_start for o_start, o_end in objects):
            return True
    return False
