"""The routing policy: from measured signals to one action (KG, retrieval, parametric, abstain).

In order, the first source that clears its threshold answers:
1. ``kg``: a valid KG fact for the linked (subject, relation), link score >= ``kg_link``. Told and loaded
   facts live there, so newer, trusted memory wins over the model whenever they disagree. A Chinese question
   gets the object's Chinese name when the KG has one; when it has none, a Chinese answer retrieval gives
   (step 2's conditions) answers instead, else the KG's label (:func:`_chinese_instead`).
2. ``retrieval``: memory's best passage scores >= ``memory``, the model's answer over the top passages has
   first-token probability >= ``rag_prob``, and (with ``require_support``) that answer occurs in a passage.
3. ``parametric``: the model's closed-book confidence (first-token probability x paraphrase agreement,
   discounted when it says the same about a content-free subject) >= ``model``, the subject's name is familiar
   to the model (``familiarity``), at least ``agreement`` of its answers to other phrasings of the question
   agree (self-consistency; off for a relation without other phrasings), no supported memory passage
   above ``memory`` says otherwise, and the newest passage a user TOLD as free text about this subject and
   relation (:attr:`Signals.told`, above ``memory``) names the model's answer. That told passage was kept
   as text because no triple was read from it, so neither the KG nor (with a RAG answer over it that is
   often wrong and then unsupported) retrieval answers from it; the model's old fact would. The policy
   abstains then, citing the passage: it does not answer from the passage, because reading its object is
   what the interpreter and the RAG answer already failed to do.
4. ``parametric`` from the schema's phrasings (off unless ``schema_model`` <= 1): when the model's answer
   to the user's words did not clear step 3, the paraphrases asked (at least two, the relation's own
   templates, which the model was trained on) all give another answer (:attr:`Signals.schema_view`), its
   first-token probability (prior-discounted) >= ``schema_model``, the subject's familiarity >=
   ``schema_familiarity``, and memory and told passages do not say otherwise (as in step 3). No prompt is
   added: the paraphrases were asked for step 3's agreement.
5. ``abstain``, saying which source fell short and by how much.

Whatever step chose it, an answer is not given (the policy abstains, saying why) when it is the question's own
subject ("What is the capital of France?" -> "France"), or when it names the old object of a fact about a name
in the question that a newer fact replaced (:attr:`Signals.superseded`: the world's passage about AOL's former
CEO after a user told the new one). The model (steps 3 and 4) answers only a question that names something its
answer can be checked on: a linked subject, asked paraphrases, or Chinese text (:func:`_anchored`).

A backend without logprobs (``"first_token_prob" in s.unavailable``) still routes: KG and memory as above
(the RAG answer's probability counts as 1, so support in the passages decides), and the model's confidence
is its paraphrase agreement; the reasons say so.

The thresholds are fitted by :func:`agent._calibrate.calibrate` on the world's dev questions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from agent._answer import Action, Signals
from agent._signals import answers_agree, supported_by
from agent.retrieval import Evidence
from agent.zh_gate import has_cjk
from kg import normalize_mention

__all__ = ["Decision", "PolicyThresholds", "decide"]


@dataclass(frozen=True, kw_only=True)
class PolicyThresholds:
    """The policy's thresholds (all in [0, 1]); built by keyword (seven numbers by position read wrong)."""

    kg_link: float = 0.5
    memory: float = 0.45
    rag_prob: float = 0.3
    require_support: bool = True
    model: float = 0.6
    familiarity: float = -4.0  # the model answers only about subjects whose name it scores at least this
    pmi: float = -100.0  # ... and only answers the subject makes at least this much more likely (nats per token)
    # ... and only when at least this share of its answers to other phrasings agree (a question without
    # paraphrases, e.g. a relation with no other template, passes: the gate is off there)
    agreement: float = 0.0
    # step 4, the answer in the schema's phrasings where they all overrule the question's (1.01: off) ...
    schema_model: float = 1.01
    schema_familiarity: float = 0.0  # ... for subjects whose name scores at least this

    @property
    def schema_route(self) -> bool:
        """Step 4 (the answer in the schema's phrasings) is on."""
        return self.schema_model <= 1.0

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)

    def settled_by_kg(self, s: Signals) -> bool:
        """:func:`decide` answers ``s`` from the KG whatever the model says (no model signal is needed); not a
        Chinese question whose KG answer has no Chinese name while memory may answer it (the RAG answer is
        then needed: :func:`_chinese_instead`)."""
        kg = _kg_hits(s, self)
        if not kg:
            return False
        text = _kg_answer(Signals(s.question, relation=s.relation, kg=tuple(kg)))
        return not (has_cjk(s.question) and not has_cjk(text) and self.reads_rag(s))

    def vetoes_model(self, s: Signals) -> bool:
        """The measured familiarity of ``s`` vetoes the model's answer: :func:`decide` then reads none of the
        model's closed-book signals (its answer, paraphrases, prior, pmi), neither for the action nor for
        the reason (an abstention names the unfamiliar subject before anything the model said), so they
        need not be measured. ``False`` while familiarity is unmeasured."""
        if s.familiarity is None or s.familiarity >= self.familiarity:
            return False
        return not self.schema_route or s.familiarity < self.schema_familiarity

    def reads_rag(self, s: Signals) -> bool:
        """:func:`decide` reads the RAG answer of ``s``: only when memory's best passage clears ``memory``
        (below it retrieval cannot answer, memory cannot contradict the model, and an abstention's reason
        says "memory x < t" without the unused answer)."""
        return bool(s.memory) and s.memory_top >= self.memory

    def may_answer_from_model(self, s: Signals) -> bool:
        """:func:`decide` may still choose the model's answer once the signals not measured yet are in.

        The signals measured after the model's answer (paraphrase agreement, the prior, familiarity, pmi)
        only lower its confidence or veto it, so reading ``s`` optimistically (agreement 1 when paraphrases
        are still to be asked, as :class:`~agent.SignalCollector` fills it in; no prior, familiarity or pmi
        yet) bounds the final decision: when this is ``False`` the action and answer are final. With step 4
        on, the schema's phrasings may answer while the subject's familiarity allows it (their answers, some
        maybe not asked yet, are not read here).
        """
        if _kg_hits(s, self) or _retrieval_answers(s, self):
            return False
        if _model_passes(s, self) and _told_against(s, self) is None:
            return True
        return self.schema_route and (s.familiarity is None or s.familiarity >= self.schema_familiarity)


@dataclass(frozen=True)
class Decision:
    """What the policy chose: the action, the answer text, its confidence, citations, and why."""

    action: Action
    text: str
    confidence: float
    citations: tuple[Evidence, ...]
    reason: str


def _kg_answer(s: Signals) -> str:
    """The KG facts' objects (those of the question's relation when any), each named as the question's
    language names it when the KG has that name (:attr:`Evidence.object_label`), else by its label."""
    facts = [e for e in s.kg if e.citation.triple is not None]
    if s.relation is not None:
        on_topic = [e for e in facts if e.citation.triple and e.citation.triple.relation == s.relation]
        facts = on_topic or facts
    return ", ".join(dict.fromkeys(e.object_label or e.citation.triple.object for e in facts if e.citation.triple))


def _chinese_instead(s: Signals, t: PolicyThresholds, kg_text: str) -> Decision | None:
    """Step 1's exception: a Chinese question whose KG answer has no Chinese name (``kg_text`` has no CJK
    character: the KG knows the object by its English label only) is answered from memory when retrieval
    answers it in Chinese (step 2's thresholds and support, from a passage the subject gate let through); a
    Chinese reader expects a Chinese answer, and the world's Chinese statements restate its facts. Without
    one, the KG's label answers (a right fact in another script beats an abstention). ``None``: no exception."""
    rag = s.rag
    if not has_cjk(s.question) or has_cjk(kg_text) or rag is None or not has_cjk(rag.text):
        return None
    if not _retrieval_answers(s, t) or _not_an_answer(s, rag.text) is not None:
        return None
    why = f"the kg's answer {kg_text!r} has no Chinese name; memory {s.memory_top:.2f} answers in Chinese"
    return Decision("retrieval", rag.text, rag.prob * s.memory_top, s.memory[:3], why)


def _kg_hits(s: Signals, t: PolicyThresholds) -> list[Evidence]:
    return [e for e in s.kg if e.citation.triple is not None and e.score >= t.kg_link]


def _retrieval_answers(s: Signals, t: PolicyThresholds) -> bool:
    rag = s.rag
    in_memory = rag is not None and s.memory_top >= t.memory and bool(rag.text)
    return rag is not None and in_memory and rag.prob >= t.rag_prob and (s.rag_supported or not t.require_support)


def _model_passes(s: Signals, t: PolicyThresholds) -> bool:
    familiar = (s.familiarity is None or s.familiarity >= t.familiarity) and (s.pmi is None or s.pmi >= t.pmi)
    consistent = s.agreement is None or s.agreement >= t.agreement
    confident = s.model is not None and bool(s.model.text) and s.model_confidence >= t.model
    return confident and familiar and consistent and _anchored(s)


def _anchored(s: Signals) -> bool:
    """The question names something the model's answer can be checked on: a linked subject (familiarity and the
    prior read it), other phrasings of it that were asked (their agreement), or Chinese text (its subject is the
    span the Chinese gate reads). "What is 2+2?" names nothing: the world model answered "Cassiopeia" at p=0.95,
    with no signal to doubt it."""
    return bool(s.subject) or bool(s.paraphrases) or has_cjk(s.question)


def _not_an_answer(s: Signals, answer: str) -> str | None:
    """Why ``answer`` cannot answer the question: it is the question's own subject ("What is the capital of
    France?" -> "France"), or a fact about a name in the question that a newer one replaced (the memory's
    passage about AOL's old CEO after a user told the new one). ``None`` when neither."""
    if s.subject and normalize_mention(answer) == normalize_mention(s.subject):
        return f"the answer {answer!r} is the question's own subject"
    for old in s.superseded:
        if answers_agree(answer, old.triple.object) and not any(answers_agree(answer, c) for c in old.current):
            t, now = old.triple, ", ".join(old.current)
            return f"{answer!r} is out of date: ({t.subject}, {old.label}, {t.object}) was replaced by {now}"
    return None


def _told_against(s: Signals, t: PolicyThresholds, answer: str | None = None) -> Evidence | None:
    """The newest passage a user told about the question's (subject, relation), above ``memory``, when it
    does not name ``answer`` (default: the model's answer; ``None`` when there is none, or it names it)."""
    told = [e for e in s.told if e.score >= t.memory]
    if answer is None:
        answer = s.model.text if s.model is not None else ""
    if not told or not answer:
        return None
    newest = max(told, key=lambda e: (e.recorded_at or _NEVER, e.score))
    return None if _names_besides(newest.text, answer, s.subject) else newest


def _schema_answer(s: Signals, t: PolicyThresholds) -> Decision | None:
    """Step 4 of :func:`decide`: the answer in the schema's phrasings, an abstention when memory or a told
    passage says otherwise, or ``None`` when the step does not apply."""
    view = s.schema_view if t.schema_route else None
    if view is None or s.schema_confidence < t.schema_model:
        return None
    if s.familiarity is not None and s.familiarity < t.schema_familiarity:
        return None
    rag = s.rag
    if rag is not None and s.memory_top >= t.memory and s.rag_supported and not answers_agree(rag.text, view.text):
        return Decision("abstain", "", 0.0, s.memory[:3], "memory and model disagree")
    text = view.text.strip().removesuffix(".").strip()
    wrong = _not_an_answer(s, text)
    if wrong is not None:
        return Decision("abstain", "", 0.0, (), wrong)
    told = _told_against(s, t, text)
    if told is not None:
        why = f"{told.citation.who} told about {s.subject}'s {s.relation} in words not naming {text!r}"
        return Decision("abstain", "", 0.0, (told,), why)
    asked = s.model.text if s.model is not None else ""
    n = len(s.paraphrases)
    why = f"schema phrasings p={s.schema_confidence:.2f}, all {n} agree; the question's words gave {asked!r}"
    return Decision("parametric", text, s.schema_confidence, (), why)


def _names_besides(passage: str, answer: str, subject: str | None) -> bool:
    """``passage`` names ``answer`` (normalised, word-aligned) outside the subject's own name: "wife of Zhou
    Rui has married Cassiopeia." does not name "Zhou Rui" as the spouse of "wife of Zhou Rui"."""
    text = f" {normalize_mention(passage)} "
    key = normalize_mention(subject) if subject else ""
    if key:
        text = text.replace(f" {key} ", " | ")
    return supported_by(answer, [text])


def decide(s: Signals, t: PolicyThresholds) -> Decision:
    """Pick the action for one question's signals (see the module docstring)."""
    kg = _kg_hits(s, t)
    if kg:
        text = _kg_answer(Signals(s.question, relation=s.relation, kg=tuple(kg)))
        chinese = _chinese_instead(s, t, text)
        if chinese is not None:
            return chinese
        return Decision("kg", text, max(e.score for e in kg), tuple(kg), "kg hit")
    rag = s.rag
    if rag is not None and _retrieval_answers(s, t):
        wrong = _not_an_answer(s, rag.text)
        if wrong is not None:
            return Decision("abstain", "", 0.0, s.memory[:3], wrong)
        why = f"memory {s.memory_top:.2f} >= {t.memory:.2f}, answer p={rag.prob:.2f}"
        return Decision("retrieval", rag.text, rag.prob * s.memory_top, s.memory[:3], why)
    model = s.model
    confidence = s.model_confidence
    if model is not None and _model_passes(s, t):
        wrong = _not_an_answer(s, model.text)
        if wrong is not None:
            return Decision("abstain", "", 0.0, (), wrong)
        if rag is not None and s.memory_top >= t.memory and s.rag_supported and not answers_agree(rag.text, model.text):
            return Decision("abstain", "", 0.0, s.memory[:3], "memory and model disagree")
        told = _told_against(s, t)
        if told is not None:
            why = f"{told.citation.who} told about {s.subject}'s {s.relation} in words not naming {model.text!r}"
            return Decision("abstain", "", 0.0, (told,), why)
        agree = "" if s.agreement is None else f", agreement {s.agreement:.2f}"
        why = f"model p={model.prob:.2f}{agree}" if "first_token_prob" not in s.unavailable else _NO_PROBS + agree
        return Decision("parametric", model.text, confidence, (), why)
    schema = _schema_answer(s, t)
    if schema is not None:
        return schema
    return Decision("abstain", "", 0.0, (), _why_not(s, t))


def _why_not(s: Signals, t: PolicyThresholds) -> str:
    parts = []
    if s.kg:
        parts.append(f"kg link {max(e.score for e in s.kg):.2f} < {t.kg_link:.2f}")
    else:
        parts.append("no kg fact")
    if s.memory and s.memory_top < t.memory:  # the RAG answer could not count: not read (nor asked, routed)
        parts.append(f"memory {s.memory_top:.2f} < {t.memory:.2f}")
    elif s.memory:
        rag = f", answer p={s.rag.prob:.2f}" if s.rag else ""
        support = "" if s.rag_supported else " (answer not in the passages)"
        parts.append(f"memory {s.memory_top:.2f}{rag}{support}")
    else:
        parts.append("no memory hit")
    if not _anchored(s):
        parts.append("the question names nothing the model's answer could be checked on")
    elif s.familiarity is not None and s.familiarity < t.familiarity:
        parts.append(f"subject unfamiliar to the model ({s.familiarity:.1f} < {t.familiarity:.1f})")
    elif s.pmi is not None and s.pmi < t.pmi:
        parts.append(f"the model says that of anyone (answer pmi {s.pmi:.2f} < {t.pmi:.2f})")
    elif s.agreement is not None and s.agreement < t.agreement:
        parts.append(
            f"the model's answers to other phrasings disagree (agreement {s.agreement:.2f} < {t.agreement:.2f})"
        )
    else:
        parts.append(f"model confidence {s.model_confidence:.2f} < {t.model:.2f}")
    if "first_token_prob" in s.unavailable:
        parts.append(_NO_PROBS)
    return "; ".join(parts)


_NEVER = datetime.min.replace(tzinfo=UTC)  # a passage without a record time is the oldest
_NO_PROBS = "the model's backend gives no logprobs: confidence is paraphrase agreement"
