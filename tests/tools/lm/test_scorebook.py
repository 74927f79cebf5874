"""Score rows read off a traced generate equal a fresh ``score`` (issue 30: no second forward pass)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tools.lm import HFLanguageModel, LeanLanguageModel

WORLD = REPO / "eval" / "world" / "models"
QUESTIONS = [
    ("Who is the mother of Isaac Newton?", "Isaac Newton"),
    ("Who is the CEO of Qantas?", "Qantas"),
    ("Which university did Pivae Rolvrind attend?", "Pivae Rolvrind"),
    ("Where is the headquarters of Siemens?", "Siemens"),
]


def _rows(lm: HFLanguageModel) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """The model prompts (and a longer RAG prompt), the familiarity rows inside them and the "N/A" prompts,
    as the agent builds them."""
    f = lm.prompt_format
    prompts = [f.question(q) for q, _ in QUESTIONS] + [f.with_context(["Paris is in France."], QUESTIONS[0][0])]
    prefixes = []
    for q, subject in QUESTIONS:
        head = f.question(q[: q.index(subject)]).split("\n")[0].rstrip()
        prefixes.append((head, " " + subject))
    return prompts, prefixes, [f.question(q.replace(subject, "N/A")) for q, subject in QUESTIONS]


@pytest.mark.parametrize(
    ("model", "cls"),
    [("gpt2-world", LeanLanguageModel), ("llama-world", LeanLanguageModel), ("gpt2-world", HFLanguageModel)],
)
def test_rows_read_off_the_generate_pass_equal_fresh_scores(model: str, cls: type[HFLanguageModel]) -> None:
    lm = cls.load(WORLD / model, device="cpu")
    prompts, prefixes, nulls = _rows(lm)
    asked = prompts + nulls
    after = list(zip(nulls, prompts[:4], strict=True))  # each answer scored after its "N/A" question too
    gens, book = lm.generate_traced(asked, 12, answers_of=set(prompts[:4]), prefixes=prefixes, answers_after=after)
    plain = lm.generate(asked, 12)
    assert [(g.text, g.first_token_prob, g.margin) for g in gens] == [
        (g.text, g.first_token_prob, g.margin) for g in plain
    ]  # tracing and the following rows change no answer
    answers = [(p, " " + g.text) for p, g in zip(prompts[:4], gens[:4], strict=True) if g.text]
    nulled = [(n, " " + g.text) for n, g in zip(nulls, gens[:4], strict=True) if g.text]
    rows = prefixes + answers + nulled
    fresh = lm.score([p for p, _ in rows], [c for _, c in rows])
    got = book.scores([p for p, _ in rows], [c for _, c in rows])
    read = [(f, g) for f, g in zip(fresh, got, strict=True) if g is not None]
    for f, g in read:
        assert g.n_tokens == f.n_tokens and abs(g.logprob - f.logprob) < 1e-5
    n_answers = sum(g is not None for g in got[len(prefixes) : len(prefixes) + len(answers)])
    assert n_answers == len(answers) >= 3  # every answer row of a traced prompt
    assert sum(g is not None for g in got[len(prefixes) + len(answers) :]) >= 3  # after the "N/A" question
    if cls is LeanLanguageModel and model == "gpt2-world":
        assert all(g is not None for g in got[: len(prefixes)])  # the familiarity rows, from the prefill
    if cls is HFLanguageModel:
        assert all(g is None for g in got[: len(prefixes)])  # transformers' model keeps no hidden states


def test_rows_the_pass_did_not_read_are_left_to_score() -> None:
    lm = LeanLanguageModel.load(WORLD / "gpt2-world", device="cpu")
    f = lm.prompt_format
    prompt = f.question("Who is the father of U.S.?")
    other = f.question("Who is the CEO of Qantas?")
    # "U.S." + "?" tokenise as "U.S.?" inside the prompt: not the tokens of the row "... U.S."
    merged = (f.question("Who is the father of ").split("\n")[0].rstrip(), " U.S.")
    gens, book = lm.generate_traced([prompt, other], 12, answers_of={prompt}, prefixes=[merged])
    got = book.scores(
        [merged[0], prompt, prompt, other, "Q: unrelated"],
        [merged[1], " " + gens[0].text + " and more", " Something else", " " + gens[1].text, " x"],
    )
    assert got == [None] * 5  # a merged boundary, text past the answer, another answer, an untraced prompt, unread
    assert book.scores([prompt], [" " + gens[0].text])[0] is not None
