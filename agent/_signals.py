"""Measuring the signals of ``Agent.ask``: KG hits, retrieval scores and support, the model's own confidence.

For each question, batched over many:
1. link (subject, relation): the KG's entity mentions with the relation linker, or else a relation template
   matched word for word (which also yields the subject's text when the subject is not in the KG;
   :mod:`agent._question_links`);
2. retrieve KG facts and memory passages (``HybridRetriever``) in each namespace the caller may read;
3. ask the model with the top passages in its context (RAG) and check its answer occurs in them;
4. ask the model closed-book, and again with other phrasings of the same (subject, relation) (the
   relation's cloze templates first): agreement = share of phrasings giving the same answer;
5. score how familiar the subject's name is to the model (its tokens' mean log-probability in the question);
6. ask the question once more about a content-free subject ("N/A"): an answer the model gives whatever the
   subject is its prior for the relation (the most common object), not knowledge of this subject (the
   content-free input of contextual calibration, Zhao et al. 2021), and score the model's answer under both:
   their log-probability difference (pointwise mutual information of answer and subject) is low when the
   answer is what the model says about anyone.

A local model reads the familiarity and pmi rows while it generates (``generate_traced``,
:mod:`tools.lm._scorebook`): the familiarity row is a prefix of the model prompt (its prefill's hidden
states give those logits), the model's answer after its question is what the decoding emitted, and after
the "N/A" question it is fed to a copy of that prompt's row in the same decoding steps; only rows it could
not read that way (a tokenisation that differs, prompts in different length chunks) go to ``score``.

The collector asks the model for what its backend gives: a served model without logprobs yields answers
only (its confidence is then paraphrase agreement), one without prompt log-probabilities no familiarity or
pmi; each question's :attr:`Signals.unavailable` names what was missing and :attr:`Signals.model_calls`
how many prompts it cost (at most 5 generations and 3 scored rows per question: the bound on one ask).

``Agent.ask`` passes the policy's thresholds (:class:`Routing`): a signal that cannot change the decision is
then not measured (no model call for a question the KG answers; paraphrases, prior, familiarity and pmi
only while the model's own answer may still be chosen; on a batched model familiarity is scored first and
a subject it vetoes gets no closed-book prompt; no RAG prompt when memory's best passage is below the
policy's threshold), see :meth:`SignalCollector.run`. Calibration measures everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from agent._answer import ModelView, Signals
from agent._question_links import QuestionLink, QuestionLinker
from agent._told import told_about
from agent._work import WorkCounter
from agent.retrieval import Evidence, HybridRetriever
from agent.zh_gate import has_cjk
from kg import EntityLinker, RelationLinker, normalize_mention
from memory import Scope
from tools.errors import UnknownNamespaceError, UnsupportedSignalError
from tools.lm import Generation, LanguageModel

if TYPE_CHECKING:
    from tools.lm import ScoreBook

__all__ = ["AskPlan", "Routing", "SignalCollector", "answers_agree"]

logger = logging.getLogger(__name__)


def answers_agree(a: str, b: str) -> bool:
    """Two short answers name the same thing: equal after normalisation, or one starts with the other."""
    x, y = normalize_mention(a), normalize_mention(b)
    if not x or not y:
        return False
    return x == y or x.startswith(y + " ") or y.startswith(x + " ")


def supported_by(answer: str, passages: Sequence[str], subject: str | None = None) -> bool:
    """The answer occurs (normalised, word-aligned) in a passage that also names ``subject`` (when known)."""
    a = normalize_mention(answer)
    s = normalize_mention(subject) if subject else ""
    for passage in passages:
        text = f" {normalize_mention(passage)} "
        if a and f" {a} " in text and (not s or f" {s} " in text):
            return True
    return False


class Routing(Protocol):
    """What the routing policy still needs measured (:class:`agent.PolicyThresholds` is one)."""

    def settled_by_kg(self, s: Signals) -> bool:
        """The KG answers ``s`` whatever the model says."""
        ...

    def may_answer_from_model(self, s: Signals) -> bool:
        """The model's own answer may still be chosen for ``s`` (its unmeasured signals read optimistically)."""
        ...

    def vetoes_model(self, s: Signals) -> bool:
        """The decision reads none of the model's closed-book signals of ``s`` (its measured familiarity
        vetoes the model): only the RAG answer is still needed."""
        ...

    def reads_rag(self, s: Signals) -> bool:
        """The decision reads the RAG answer of ``s`` (for the action, a contradiction or the reason)."""
        ...


@dataclass(frozen=True)
class AskPlan:
    """What :meth:`SignalCollector.plan` read for a batch of questions: the retrieval-only signals per
    question, and the prompts (with their ``(question index, kind)`` slots) the model will answer."""

    drafts: tuple[Signals, ...]
    prompts: tuple[str, ...]
    slots: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class _Row:
    """One row of the batched ``score`` call: question ``question``'s ``kind`` of score."""

    question: int
    kind: str  # "familiarity" | "with" (the answer after the question) | "without" (after the "N/A" question)
    prompt: str
    continuation: str


NULL_SUBJECT = "N/A"  # a content-free subject: what the model answers for it is its prior, not knowledge


def _later_stages(slots: Sequence[tuple[int, str]]) -> list[list[int]]:
    """Slot indices after the model's and the RAG answers: each question's first paraphrases, its second
    ones, ..., then the priors."""
    nth: dict[int, int] = {}
    stages: list[list[int]] = []
    priors = []
    for j, (i, kind) in enumerate(slots):
        if kind == "para":
            k = nth[i] = nth.get(i, -1) + 1
            if k == len(stages):
                stages.append([])
            stages[k].append(j)
        elif kind == "prior":
            priors.append(j)
    return [*stages, priors]


class SignalCollector:
    """Computes :class:`Signals` for questions (see the module docstring).

    Args:
        retriever: KG + memory retrieval.
        entities, relations: the linkers (the retriever's).
        templates: relation id -> its phrasings (``{}`` = subject), for linking and paraphrases.
        lm: the model answering closed-book and with context.
        k: passages retrieved; ``context``: how many of them go into the RAG prompt.
        n_paraphrases: other phrasings asked per question.
        max_new_tokens: the answer tokens decoded per prompt; ``max_new_tokens_cjk`` for a prompt with CJK
            characters (a Chinese answer, an idiom's meaning, takes a token a character and runs past 12).
        kg_shortcut: a KG fact linked at least this well skips the paraphrase, prior and familiarity probes.
        lazy_gates: with routing, skip the prompts whose answers the policy would not read (see
            :meth:`run`): on a batched model score the subjects' familiarity first and ask nothing
            closed-book about a subject it vetoes; on any model, no RAG prompt when memory's best passage is
            below the policy's threshold. ``False``: the plan's prompts run as before these gates (a
            benchmark's comparison; the decisions are the same).
        inverses: relation id -> its inverse relations (the schema's ``owl:inverseOf``): a told passage
            read as a relation's inverse is about the same fact (see :meth:`told_about`).
        warm: embeds a batch's questions and the texts their linking embeds (:meth:`warm_texts`) up front
            in one call; pass a memoising embedder's ``embed`` (:class:`memory.MemoEmbedder`) so that each
            text is embedded once, not once per scope searched, per linking step and for the guard.
    """

    def __init__(
        self,
        retriever: HybridRetriever,
        entities: EntityLinker,
        relations: RelationLinker,
        templates: Mapping[str, Sequence[str]],
        lm: LanguageModel,
        *,
        k: int = 5,
        context: int = 3,
        n_paraphrases: int = 2,
        max_new_tokens: int = 12,
        max_new_tokens_cjk: int = 24,
        kg_shortcut: float = 0.9,
        warm: Callable[[list[str]], object] | None = None,
        lazy_gates: bool = True,
        inverses: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._retriever = retriever
        self._warm = warm
        self.work = WorkCounter()
        self.linker = QuestionLinker(entities, relations, templates)
        self._entities, self._relations = entities, relations
        self._inverses = {r: frozenset(qs) for r, qs in (inverses or {}).items()}
        self.lm = lm
        self.k, self.context, self.n_paraphrases, self.max_new_tokens = k, context, n_paraphrases, max_new_tokens
        self.max_new_tokens_cjk = max_new_tokens_cjk
        self.kg_shortcut = kg_shortcut
        self.lazy_gates = lazy_gates

    def link(self, question: str, namespaces: Sequence[str] | None = None) -> QuestionLink | None:
        """The best (subject, relation) for ``question``, or ``None`` (:meth:`QuestionLinker.link`)."""
        return self.linker.link(question, namespaces)

    def warm_texts(self, questions: Sequence[str], scopes: Sequence[Sequence[Scope]]) -> list[str]:
        """What :meth:`plan` will embed for these questions: each question once, then the texts linking
        embeds (:meth:`QuestionLinker.link_texts`); embedded in one call, the memo serves every scope,
        linking and the guard. Reads only names (hold the read lock), runs no model."""
        texts = list(dict.fromkeys(questions))
        for question, searched in zip(questions, scopes, strict=True):
            texts += self.linker.link_texts(question, [s.agent_id for s in searched if s.agent_id is not None] or None)
        return list(dict.fromkeys(texts))

    def told_about(
        self, link: QuestionLink, memory: Sequence[Evidence], namespaces: Sequence[str] | None = None
    ) -> tuple[Evidence, ...]:
        """The passages of ``memory`` a user told about ``link``'s (subject, relation) (:func:`told_about`)."""
        return told_about(link, memory, self._entities, self._relations, self._inverses, namespaces)

    def paraphrase_prompts(self, link: QuestionLink) -> list[str]:
        """Other phrasings of (subject, relation): cloze templates first, then questions in the model's format; none
        for a subject with CJK characters (the templates are English: "埃及's capital is" would only zero agreement)."""
        if has_cjk(link.subject):
            return []
        others = [t for t in self.linker.templates.get(link.relation, ()) if t != link.template]
        ordered = [t for t in others if not t.rstrip().endswith("?")] + [t for t in others if t.rstrip().endswith("?")]
        prompts = []
        for template in ordered[: self.n_paraphrases]:
            text = template.replace("{}", link.subject)
            prompts.append(self.lm.prompt_format.question(text) if text.rstrip().endswith("?") else text)
        return prompts

    def _familiarity_rows(self, drafts: Sequence[Signals], only: set[int] | None = None) -> list[_Row]:
        """Rows scoring each linked subject's tokens after the question's words before it (mean
        log-probability: how familiar the name is to the model); ``only``: these questions' (all)."""
        rows: list[_Row] = []
        for i, d in enumerate(drafts):
            if only is not None and i not in only:
                continue
            if d.subject and d.subject in d.question and not any(e.score >= self.kg_shortcut for e in d.kg):
                head = d.question[: d.question.index(d.subject)]
                # a subject opening the question is scored after the prompt's own opening ("Q:"): with nothing
                # before it there is no first token to score; a format with no opening gets no row (not measured)
                prefix = self.lm.prompt_format.question(head).split("\n")[0].rstrip()
                if prefix.strip():
                    rows.append(_Row(i, "familiarity", prefix, " " + d.subject))
        return rows

    @staticmethod
    def _pmi_rows(
        slots: Sequence[tuple[int, str]],
        prompts: Sequence[str],
        gens: Mapping[int, Generation],
        only: set[int] | None = None,
    ) -> list[_Row]:
        """Rows scoring each question's model answer after the question and after its "N/A" version: the
        difference is log p(answer | question) - log p(answer | question about "N/A"), per answer token
        (``only``: these questions'; ``gens``: the answers by slot index)."""
        asked: dict[int, tuple[str, str]] = {}
        null: dict[int, str] = {}
        for j, ((i, kind), prompt) in enumerate(zip(slots, prompts, strict=True)):
            gen = gens.get(j)
            if gen is None or (only is not None and i not in only):
                continue
            if kind == "model" and gen.text:
                asked[i] = (prompt, " " + gen.text)
            elif kind == "prior":
                null[i] = prompt
        both = [i for i in asked if i in null]
        return [_Row(i, "with", *asked[i]) for i in both] + [_Row(i, "without", null[i], asked[i][1]) for i in both]

    def _scores(
        self, rows: Sequence[_Row], scored: dict[int, int], book: ScoreBook | None = None
    ) -> tuple[dict[int, float], dict[int, float], int]:
        """Familiarity and pmi per question from one batched ``score`` call over all their rows (``scored``
        counts each question's rows: its model calls), and the rows the model scored (a row twice in the
        batch is scored once). Rows the traced ``generate`` already read are answered from its ``book``
        (no forward pass: not counted as scored)."""
        score = getattr(self.lm, "score", None)
        if score is None or not rows:
            return {}, {}, 0
        pairs = list(dict.fromkeys((r.prompt, r.continuation) for r in rows))
        known = book.scores([p for p, _ in pairs], [c for _, c in pairs]) if book is not None else [None] * len(pairs)
        got = {pair: sc for pair, sc in zip(pairs, known, strict=True) if sc is not None}
        todo = [pair for pair in pairs if pair not in got]
        try:
            if todo:
                got.update(zip(todo, score([p for p, _ in todo], [c for _, c in todo]), strict=True))
        except UnsupportedSignalError as exc:  # a served model without prompt log-probabilities
            logger.info("no familiarity or pmi signal: %s", exc)
            return {}, {}, 0
        by: dict[tuple[int, str], float] = {}
        for r in rows:
            by[(r.question, r.kind)] = float(got[(r.prompt, r.continuation)].mean_logprob)
            scored[r.question] = scored.get(r.question, 0) + 1
        familiarity = {i: v for (i, kind), v in by.items() if kind == "familiarity"}
        pmi = {i: v - by[(i, "without")] for (i, kind), v in by.items() if kind == "with"}
        return familiarity, pmi, len(todo)

    def _retrieve(self, question: str, scopes: Sequence[Scope]) -> list[Evidence]:
        found: dict[tuple[str | None, str | None, str], Evidence] = {}
        # KG facts as a reader of these namespaces sees them (the first one's facts shadow the shared ones').
        names = [s.agent_id for s in scopes if s.agent_id is not None] or None
        for scope in scopes:
            try:
                hits = self._retriever.retrieve(question, scope=scope, k=self.k, namespaces=names)
            except UnknownNamespaceError:  # no memory written there yet: the KG may still answer
                hits = self._retriever.kg_evidence(question, namespaces=names)[: self.k]
            for e in hits:
                key = (e.citation.item_id, e.citation.assertion_id, e.text)
                if key not in found or e.score > found[key].score:
                    found[key] = e
        return sorted(found.values(), key=lambda e: -e.score)[: self.k]

    def collect(
        self, questions: Sequence[str], scopes: Sequence[Scope], *, routing: Routing | None = None
    ) -> list[Signals]:
        """Signals for each question, all searching ``scopes``; model calls are batched over all of them
        (``routing``: measure only what can change the decision, see :meth:`run`)."""
        return self.collect_each(questions, [scopes] * len(questions), routing=routing)

    def collect_each(
        self, questions: Sequence[str], scopes: Sequence[Sequence[Scope]], *, routing: Routing | None = None
    ) -> list[Signals]:
        """Signals for each question, question ``i`` searching ``scopes[i]`` (askers with different grants
        batched together): :meth:`plan` then :meth:`run`.
        """
        return self.run(self.plan(questions, scopes), routing=routing)

    def plan(self, questions: Sequence[str], scopes: Sequence[Sequence[Scope]]) -> AskPlan:
        """The reading half of :meth:`collect_each`: links, KG facts and memory passages, and the prompts.

        Reads the memory and the KG (hold the service's read lock); runs no language model. The questions
        are embedded in one call up front when a ``warm`` embedder was given.

        Raises:
            ValueError: ``scopes`` and ``questions`` differ in length.
        """
        if len(scopes) != len(questions):
            raise ValueError(f"{len(questions)} questions but {len(scopes)} scope lists")
        if self._warm is not None and questions:
            self._warm(self.warm_texts(questions, scopes))  # once per text: scopes, linking and the guard reuse it
        drafts: list[Signals] = []
        prompts: list[str] = []
        slots: list[tuple[int, str]] = []  # (question index, "model" | "rag" | "para")
        for i, question in enumerate(questions):
            names = [s.agent_id for s in scopes[i] if s.agent_id is not None] or None
            link = self.link(question, names)
            evidence = self._retrieve(question, scopes[i])
            kg = tuple(e for e in evidence if e.origin in ("kg", "both"))
            memory = tuple(e for e in evidence if e.origin != "kg")
            drafts.append(
                Signals(
                    question,
                    subject=link.subject if link else None,
                    relation=link.relation if link else None,
                    link_score=link.score if link else 0.0,
                    kg=kg,
                    memory=memory,
                    told=self.told_about(link, memory, names) if link else (),
                    superseded=()
                    if any(e.score >= self.kg_shortcut for e in kg)
                    else self._retriever.superseded(question, namespaces=names),
                )
            )
            prompts.append(self.lm.prompt_format.question(question))
            slots.append((i, "model"))
            if memory:
                passages = [e.text for e in memory[: self.context]]
                prompts.append(self.lm.prompt_format.with_context(passages, question))
                slots.append((i, "rag"))
            if any(e.score >= self.kg_shortcut for e in kg):
                continue  # an exact KG fact answers: the model's confidence signals would not be used
            for prompt in self.paraphrase_prompts(link) if link else []:
                prompts.append(prompt)
                slots.append((i, "para"))
            if link is not None and link.subject in question:
                prompts.append(self.lm.prompt_format.question(question.replace(link.subject, NULL_SUBJECT)))
                slots.append((i, "prior"))
        return AskPlan(drafts=tuple(drafts), prompts=tuple(prompts), slots=tuple(slots))

    def run(self, plan: AskPlan, *, routing: Routing | None = None) -> list[Signals]:
        """The model half of :meth:`collect_each`: the prompts of ``plan`` generated, familiarity and pmi
        scored, and the signals assembled. Reads neither memory nor KG (hold the model, not the read lock).

        Without ``routing`` every signal is measured: one batched ``generate`` and one batched ``score``
        call (familiarity and pmi rows together; what calibration needs). With ``routing`` (the policy's
        thresholds) only what can still change the decision is: nothing for a question the KG answers, and
        familiarity and pmi only while the model's own answer may still be chosen. On a batched model
        (``lazy_gates``) the subjects' familiarity is scored first, in a short call of its own, and a
        question whose familiarity vetoes the model (``routing.vetoes_model``) gets only its RAG prompt: then
        one traced ``generate`` for the rest, and a ``score`` call for the rows it could not read. On a
        backend paying one request per prompt (``lm.one_request_per_prompt``) the model's and the RAG answers
        come first, then the paraphrases one at a time and the prior, each only while the model may still
        answer. The action and answer are those of the full measurement (and on a batched model the
        confidence, citations and reason too); a staged abstention's reason names what fell short among
        those measured.
        """
        drafts, prompts, slots = plan.drafts, plan.prompts, plan.slots
        staged = routing is not None and bool(getattr(self.lm, "one_request_per_prompt", False))
        scored: dict[int, int] = {}
        first, known, n_first = self._first_slots(plan, routing, staged, scored)
        gens: dict[int, Generation] = {}  # slot index -> its answer
        # a batched model reads the familiarity rows inside the model prompts and scores its answers as it
        # decodes them (a traced generate): the score call then runs only the rows it did not read
        candidates = None if staged else self._familiarity_rows(drafts, {slots[j][0] for j in first} - set(known))
        batches, ran, book = self._generate(plan, first, gens, candidates)
        if staged and routing is not None:
            # then each question's paraphrases one at a time, then its prior, each asked only while the
            # question is open: on a server answering one request at a time, fewer requests is less waiting
            for stage in _later_stages(slots):
                open_ = self._open(plan, gens, routing)
                more = self._generate(plan, [j for j in stage if slots[j][0] in open_], gens)[:2]
                batches, ran = batches + more[0], ran + more[1]
        only = None if routing is None else self._open(plan, gens, routing, known)
        if staged and routing is not None:  # one request per row: pmi only where familiarity left it open
            familiarity, _, n_familiar = self._scores(self._familiarity_rows(drafts, only), scored)
            only = self._open(plan, gens, routing, familiarity)
            _, pmi, n_pmi = self._scores(self._pmi_rows(slots, prompts, gens, only), scored)
            score_calls, n_scored = bool(n_familiar) + bool(n_pmi), n_familiar + n_pmi
        else:  # a batched model: familiarity and pmi rows in one score call
            later = None if only is None else only - set(known)
            rows = self._familiarity_rows(drafts, later) + self._pmi_rows(slots, prompts, gens, only)
            familiarity, pmi, n_scored = self._scores(rows, scored, book)
            familiarity, score_calls = {**known, **familiarity}, bool(n_scored)
        self.work.add(
            asks=len(drafts),
            batches=1,
            model_batches=batches + score_calls + bool(n_first),
            model_prompts=ran + n_scored + n_first,
        )
        return self._assemble(plan, gens, familiarity, pmi, scored)

    def _first_slots(
        self, plan: AskPlan, routing: Routing | None, staged: bool, scored: dict[int, int]
    ) -> tuple[list[int], dict[int, float], int]:
        """The slots generated first (all but the later stages on a staged backend), less those whose
        answers the policy would not read; the familiarity scored before generating (``lazy_gates`` on a
        batched model; into ``scored``) and how many rows that score call ran."""
        drafts, slots = plan.drafts, plan.slots
        skip = {i for i, d in enumerate(drafts) if routing is not None and routing.settled_by_kg(d)}
        known: dict[int, float] = {}
        n_first = 0
        gated = routing if routing is not None and self.lazy_gates else None
        if gated is not None and not staged and "familiarity" not in self._unavailable(False):
            # familiarity first, in a short score call of its own (the subjects' names after the questions'
            # first words: a few tokens a question), for the gate below
            rows = self._familiarity_rows(drafts, set(range(len(drafts))) - skip)
            known, _, n_first = self._scores(rows, scored)
        # a subject its familiarity vetoes gets no closed-book prompt (answer, paraphrases, prior): the policy
        # would read none of them, for the action or the reason; its RAG answer may still be chosen
        vetoed = {i for i, f in known.items() if gated and gated.vetoes_model(replace(drafts[i], familiarity=f))}
        # and a RAG answer the policy would not read (memory's best passage below its threshold) is not asked
        unread = {i for i, d in enumerate(drafts) if gated is not None and not gated.reads_rag(d)}
        first = [
            j
            for j, (i, kind) in enumerate(slots)
            if i not in skip
            and (i not in unread if kind == "rag" else i not in vetoed)
            and (not staged or kind in ("model", "rag"))
        ]
        return first, known, n_first

    def _generate(
        self, plan: AskPlan, todo: Sequence[int], gens: dict[int, Generation], prefixes: Sequence[_Row] | None = None
    ) -> tuple[int, int, ScoreBook | None]:
        """Answer the prompts at ``todo`` not answered yet into ``gens``; the batches it took, the prompts
        the model ran, and what it read for later scores (a :class:`ScoreBook`, or ``None``).

        Paraphrases are read for their text only: a backend offering ``generate_texts`` (answers without
        log-probabilities, cheaper per request) answers them with it. With ``prefixes`` (rows the score
        call may need) a backend offering ``generate_traced`` (a local model) keeps the log-probabilities of
        the model prompts' answers, of each one after its "N/A" prompt, and the hidden states of the
        ``prefixes``' tokens.
        """
        todo = [j for j in todo if j not in gens]
        texts_only = getattr(self.lm, "generate_texts", None)
        traced = getattr(self.lm, "generate_traced", None) if prefixes is not None and texts_only is None else None
        groups = [todo]
        if texts_only is not None:
            groups = [[j for j in todo if plan.slots[j][1] != "para"], [j for j in todo if plan.slots[j][1] == "para"]]
        # a prompt's answer budget follows its own text (a CJK prompt's is longer), so an answer is the same
        # asked alone or in any batch; a batch without CJK prompts stays one call per group
        budget = [self.max_new_tokens_cjk if has_cjk(plan.prompts[j]) else self.max_new_tokens for j in todo]
        of = dict(zip(todo, budget, strict=True))
        groups = [[j for j in g if of[j] == b] for g in groups for b in sorted(set(budget))]
        batches = ran = 0
        book: ScoreBook | None = None
        for group in groups:
            if group:
                tokens = of[group[0]]
                # a prompt asked twice (askers of one question, the "N/A" prior of one relation) runs once
                unique = list(dict.fromkeys(plan.prompts[j] for j in group))
                if traced is not None:
                    model = {plan.slots[j][0]: plan.prompts[j] for j in group if plan.slots[j][1] == "model"}
                    # the pmi rows: the model's answer after its question and after the "N/A" question
                    priors = [(plan.slots[j][0], plan.prompts[j]) for j in group if plan.slots[j][1] == "prior"]
                    after = [(prior, model[i]) for i, prior in priors if i in model]
                    got, read = traced(
                        unique,
                        max_new_tokens=tokens,
                        answers_of=set(model.values()),
                        prefixes=[(r.prompt, r.continuation) for r in prefixes or ()],
                        answers_after=after,
                    )
                    if book is None:
                        book = read
                    else:
                        book.merge(read)
                else:
                    paraphrases = all(plan.slots[j][1] == "para" for j in group)
                    ask = texts_only if texts_only is not None and paraphrases else self.lm.generate
                    got = ask(unique, max_new_tokens=tokens)
                answered = dict(zip(unique, got, strict=True))
                gens.update((j, answered[plan.prompts[j]]) for j in group)
                batches, ran = batches + 1, ran + len(unique)
        return batches, ran, book

    def _open(
        self,
        plan: AskPlan,
        gens: Mapping[int, Generation],
        routing: Routing,
        familiarity: Mapping[int, float] | None = None,
    ) -> set[int]:
        """Questions whose answer may still come from the model, reading what is not measured yet
        optimistically: paraphrases still to be asked agree, no prior, familiarity or pmi yet."""
        pending: dict[int, int] = {}  # question -> paraphrases not asked yet
        for j, (i, kind) in enumerate(plan.slots):
            if kind == "para" and j not in gens:
                pending[i] = pending.get(i, 0) + 1
        out = set()
        for i, s in enumerate(self._assemble(plan, gens, familiarity or {}, {}, {})):
            if i in pending and s.model is not None:
                agree = sum(answers_agree(s.model.text, p.text) for p in s.paraphrases)
                s = replace(s, agreement=(agree + pending[i]) / (len(s.paraphrases) + pending[i]))
            if routing.may_answer_from_model(s):
                out.add(i)
        return out

    def _assemble(
        self,
        plan: AskPlan,
        gens: Mapping[int, Generation],
        familiarity: Mapping[int, float],
        pmi: Mapping[int, float],
        scored: Mapping[int, int],
    ) -> list[Signals]:
        """Each question's signals from the answers in ``gens`` (by slot index) and the scores."""
        # (paraphrases may have been asked for their text only: their missing probabilities say nothing)
        answered = [g for j, g in gens.items() if g.text and plan.slots[j][1] != "para"]
        # no probabilities at all from this backend: answers only, judged on agreement (see Signals); the
        # backend may know it already when none of these prompts got an answer
        caps = getattr(self.lm, "capabilities", None)
        no_probs = (bool(answered) and all(g.first_token_prob is None for g in answered)) or (
            caps is not None and caps.logprobs is False
        )
        unavailable = self._unavailable(no_probs)
        views: dict[int, dict[str, list[ModelView]]] = {}
        calls: dict[int, int] = {}
        for j, ((i, kind), prompt) in enumerate(zip(plan.slots, plan.prompts, strict=True)):
            gen = gens.get(j)
            if gen is None:
                continue
            prob = 1.0 if no_probs else gen.first_token_prob or 0.0  # 1.0: neutral, agreement decides
            view = ModelView(prompt, gen.text, prob, gen.margin or 0.0)
            views.setdefault(i, {}).setdefault(kind, []).append(view)
            calls[i] = calls.get(i, 0) + 1
        out = []
        for i, draft in enumerate(plan.drafts):
            got = views.get(i, {})
            model = got.get("model", [None])[0]
            rag = got.get("rag", [None])[0]
            prior = got.get("prior", [None])[0]
            paras = tuple(got.get("para", []))
            agreement = None
            if model is not None and paras:
                agreement = sum(answers_agree(model.text, p.text) for p in paras) / len(paras)
            passages = [e.text for e in draft.memory[: self.context]]
            supported = rag is not None and supported_by(rag.text, passages, draft.subject)
            out.append(
                replace(
                    draft,
                    model=model,
                    rag=rag,
                    paraphrases=paras,
                    agreement=agreement,
                    rag_supported=supported,
                    prior=prior,
                    familiarity=familiarity.get(i),
                    pmi=pmi.get(i),
                    unavailable=unavailable,
                    model_calls=calls.get(i, 0) + scored.get(i, 0),
                )
            )
        return out

    def _unavailable(self, no_probs: bool) -> tuple[str, ...]:
        """The model signals this backend does not give (learned from its answers so far)."""
        missing = ["first_token_prob"] if no_probs else []
        caps = getattr(self.lm, "capabilities", None)
        if getattr(self.lm, "score", None) is None or (caps is not None and caps.prompt_logprobs is False):
            missing += ["familiarity", "pmi"]
        return tuple(missing)
