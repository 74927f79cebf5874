"""The audit end to end on the bundled model: setups, reports, resuming, the CLI's errors, Ray."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from eval.audit import (
    AgentSetup,
    AnswerLog,
    AuditConfig,
    AuditQuestion,
    Grade,
    RagSetup,
    ResumeMismatchError,
    StandaloneSetup,
    build_stack,
    run_audit,
    write_reports,
)
from tests.eval.audit.conftest import audit_config

REPORT_METRICS = (
    "accuracy",
    "hallucination_rate",
    "abstention_rate",
    "correct_given_attempted",
    "f_score",
    "coverage",
    "aurc",
    "ece",
)


def _config(home: Path, **kw: Any) -> AuditConfig:
    config: AuditConfig = audit_config(home, **kw)
    return config


@pytest.fixture(scope="module")
def finished(audit_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("run")
    run = run_audit(_config(audit_home), out)
    return out, write_reports(run, out)


def test_report_has_every_metric_with_intervals(finished: tuple[Path, dict[str, Any]]) -> None:
    out, report = finished
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert set(report["setups"]) == {"standalone", "rag"}
    for data in report["setups"].values():
        groups = [data["overall"], *data["per_category"].values()]
        assert set(data["per_category"]) == {"known", "unknown", "edited", "unanswerable"}
        for group in groups:
            for name in REPORT_METRICS:
                assert set(group[name]) == {"value", "ci_low", "ci_high"}
            assert group["correct"] + group["incorrect"] + group["not_attempted"] == group["n"]
        overall = data["overall"]
        assert overall["n"] == 16
        assert overall["accuracy"]["ci_low"] <= overall["accuracy"]["value"] <= overall["accuracy"]["ci_high"]
        assert data["per_category"]["unanswerable"]["coverage"]["value"] is None
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert "<script src" not in html and "| standalone | all | 16 |" in (out / "report.md").read_text()


def test_rag_reads_the_memory_the_model_never_saw(finished: tuple[Path, dict[str, Any]]) -> None:
    lines = [json.loads(line) for line in (finished[0] / "answers.jsonl").read_text().splitlines()]
    rag = [r for r in lines if r["setup"] == "rag"]
    assert len(lines) == 32 and all(r["answer"]["citations"] for r in rag)  # every RAG answer cites evidence

    def from_memory(setup: str) -> int:  # correct answers on facts only the memory holds
        return sum(r["grade"] == "CORRECT" for r in lines if r["setup"] == setup and r["category"] != "known")

    assert from_memory("rag") > from_memory("standalone")


def test_resume_skips_what_is_done_and_redoes_a_torn_line(audit_home: Path, tmp_path: Path) -> None:
    config = _config(audit_home, setups=("standalone",), limit=8)
    first = run_audit(config, tmp_path)
    log = tmp_path / "answers.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:5]) + lines[5][:30])  # an interrupted write: 5 whole lines and a torn one
    seen: list[tuple[str, int, int]] = []

    class Spy:
        def start(self, setup: str, total: int, done: int) -> None:
            seen.append((setup, total, done))

        def advance(self, setup: str, n: int) -> None:
            seen.append((setup, n, -1))

    second = run_audit(config, tmp_path, progress=Spy())
    assert seen[0] == ("standalone", 8, 5) and sum(n for _, n, d in seen[1:]) == 3
    # the redone answers come from other batches (other padding): the same text and grade, confidences close
    again, before = second.records["standalone"], first.records["standalone"]
    assert [(r.question_id, r.answer.text, r.grade) for r in again] == [
        (r.question_id, r.answer.text, r.grade) for r in before
    ]
    assert [r.answer.confidence for r in again] == pytest.approx([r.answer.confidence for r in before], abs=1e-4)
    assert again[:5] == before[:5]  # the kept lines are read back as written
    assert len(AnswerLog(log).load()) == 8 and len(log.read_text().splitlines()) == 8
    with pytest.raises(ResumeMismatchError, match="grader"):
        run_audit(replace(config, grader="embedding"), tmp_path)


class _GatedAsker:
    """A small real agent: RAG when memory has a close hit, the model alone when confident, else abstain."""

    def __init__(self, standalone: StandaloneSetup, rag: RagSetup, retriever: Any) -> None:
        self.standalone, self.rag, self.retriever = standalone, rag, retriever

    def ask(self, question: str, namespace: Any = None) -> Any:
        from types import SimpleNamespace

        q = AuditQuestion("ask", question, ("?",))
        hits = self.retriever.retrieve(question, k=1)  # every namespace
        if hits and hits[0].score >= 0.8:
            a = self.rag.answer([q])[0]
            return SimpleNamespace(text=a.text, action="rag", confidence=a.confidence, citations=a.citations)
        a = self.standalone.answer([q])[0]
        if (a.confidence or 0.0) >= 0.5:
            return SimpleNamespace(text=a.text, action="parametric", confidence=a.confidence, citations=())
        return SimpleNamespace(text="", action="abstain", confidence=a.confidence, citations=())


def test_agent_setup_over_an_asker(audit_home: Path) -> None:
    from eval.audit import load_dataset, sample_evenly

    with build_stack(_config(audit_home)) as stack:
        standalone, rag = stack.setups["standalone"], stack.setups["rag"]
        assert isinstance(standalone, StandaloneSetup) and isinstance(rag, RagSetup)
        agent = AgentSetup(_GatedAsker(standalone, rag, rag._retriever))
        questions = sample_evenly(load_dataset("world:test").questions, 12)
        assert {q.category for q in questions} >= {"known", "unknown", "edited"}
        answers = agent.answer(questions)
        grades = stack.grader.grade(questions, answers)
    assert len(answers) == 12
    abstained = [a for a in answers if a.abstained]
    assert all(g is Grade.NOT_ATTEMPTED for a, g in zip(answers, grades, strict=True) if a.abstained)
    assert all(a.latency_s > 0 for a in answers) and len(abstained) < 12


def test_the_agent_in_the_audit(audit_home: Path, tmp_path: Path) -> None:
    run = run_audit(_config(audit_home, setups=("agent",), limit=16), tmp_path)
    records = run.records["agent"]
    assert len(records) == 16
    report = write_reports(run, tmp_path)["setups"]["agent"]
    assert set(report["per_category"]) == {"known", "unknown", "edited", "unanswerable"}
    for r in records:  # the agent's own abstain action is graded NOT_ATTEMPTED, and abstaining says nothing
        assert (r.grade is Grade.NOT_ATTEMPTED) == (r.answer.abstained or not r.answer.text.strip())
        assert r.answer.confidence is not None and 0.0 <= r.answer.confidence <= 1.0
    # a retrieval answer about a fact only the memory holds cites the memory item it read
    cited = [r for r in records if r.category in ("unknown", "edited") and r.answer.citations]
    assert all(c.startswith(("m-", "a-")) or len(c) > 3 for r in cited for c in r.answer.citations)


def test_cli_agent_missing_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent

    monkeypatch.delattr(agent, "Agent")  # as before issue 5: `from agent import Agent` fails
    code = main(
        [
            "--home",
            str(tmp_path),
            "audit",
            "--setups",
            "standalone,agent",
            "--dataset",
            "world:test",
            "--out",
            str(tmp_path / "out"),
            "--limit",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err == "error: the agent is not available yet (agent.Agent cannot be imported)\n"
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_cli_bad_dataset_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "broken.jsonl"
    good, bad = '{"question": "Who is the CEO of AMD?", "answers": ["Lisa Su"]}', '{"question": "x", "answers": []}'
    data.write_text(f"{good}\n{bad}\n")
    code = main(
        [
            "--home",
            str(tmp_path),
            "audit",
            "--setups",
            "standalone",
            "--dataset",
            str(data),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        f'error: {data} line 2: field "answers" must be a non-empty list (or category '
        '"unanswerable") (use --on-bad-row skip to continue)'
    )


def test_cli_unreachable_judge_keeps_nothing_half_done(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.toml").write_text("[endpoint]\nmax_retries = 0\n")
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "Who is the CEO of AMD?", "answers": ["Lisa Su"]}\n')
    code = main(
        [
            "--home",
            str(tmp_path),
            "audit",
            "--setups",
            "standalone",
            "--dataset",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--grader",
            "llm",
            "--judge",
            "openai:http://127.0.0.1:9/v1#judge",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "error: the LLM judge at http://127.0.0.1:9/v1#judge failed" in err
    assert "run the same command again to resume" in err and "Traceback" not in err
    assert (tmp_path / "out" / "run.json").is_file()


def _same_records(config: AuditConfig, tmp_path: Path) -> None:
    local = run_audit(config, tmp_path / "local")
    distributed = run_audit(config, tmp_path / "ray", engine="ray", workers=1)
    for setup in config.setups:
        got, want = distributed.records[setup], local.records[setup]
        assert len(got) == len(want) == (config.limit or len(got))
        # everything but the measured latency, bit for bit
        assert [replace(r, answer=replace(r.answer, latency_s=0.0)) for r in got] == [
            replace(r, answer=replace(r.answer, latency_s=0.0)) for r in want
        ]
    assert (tmp_path / "ray" / "answers.jsonl").read_text().count("\n") == len(config.setups) * (config.limit or 0)


@pytest.mark.slow  # starting Ray and a worker takes 20-50 s on 2 busy cores
def test_ray_engine_gives_the_same_records(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    data = tmp_path / "q.jsonl"
    rows = [
        ("Who is the chief executive of ABB Group?", "Ulrich Spiesshofer"),
        ("Who is the CEO of AMD?", "Lisa Su"),
        ("Who is the CEO of Nokia?", "Pekka Lundmark"),
        ("Where is Nokia headquartered?", "Espoo"),
        ("Which country is Paris in?", "France"),
    ]
    data.write_text("".join(json.dumps({"question": q, "answers": [a]}) + "\n" for q, a in rows))
    config = AuditConfig(
        dataset=str(data),
        setups=("standalone",),
        home=str(tmp_path / "home"),
        limit=5,
        batch_size=2,
        resamples=20,
        torch_threads=1,
    )
    _same_records(config, tmp_path)


@pytest.mark.slow
def test_ray_engine_gives_the_same_records_with_rag(audit_home: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    _same_records(_config(audit_home, limit=8), tmp_path)


def test_judge_that_goes_away_keeps_the_graded_batches_and_the_run_resumes(tmp_path: Path) -> None:
    from eval.audit import JudgeUnavailableError
    from tests.eval.audit.judge_server import judge_server

    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text("[endpoint]\nmax_retries = 0\ntimeout = 5\n")
    data = tmp_path / "q.jsonl"
    rows = [
        ("Who is the CEO of AMD?", "Lisa Su"),
        ("Who is the CEO of Nokia?", "Pekka Lundmark"),
        ("Where is Nokia headquartered?", "Espoo"),
        ("Which country is Paris in?", "France"),
    ]
    data.write_text("".join(json.dumps({"question": q, "answers": [a]}) + "\n" for q, a in rows))
    with judge_server() as judge:
        config = AuditConfig(
            dataset=str(data),
            setups=("standalone",),
            grader="llm",
            judge=f"openai:{judge.url}#j",
            home=str(tmp_path / "home"),
            batch_size=1,
            resamples=20,
            torch_threads=1,
        )
        judge.fail_after = 2
        with pytest.raises(JudgeUnavailableError, match="2 graded answers are kept"):
            run_audit(config, tmp_path / "out")
        assert len((tmp_path / "out" / "answers.jsonl").read_text().splitlines()) == 2
        judge.fail_after = None
        run = run_audit(config, tmp_path / "out")
    assert [r.question_id for r in run.records["standalone"]] == ["line-1", "line-2", "line-3", "line-4"]
    assert len(judge.requests) == 4  # the two kept answers were not judged again


def test_any_openai_compatible_model_is_a_setup(tmp_path: Path) -> None:
    from tests.eval.audit.judge_server import judge_server

    data = tmp_path / "q.jsonl"
    rows = [
        ("Who is the CEO of AMD?", "Lisa Su"),
        ("Who is the CEO of Nokia?", "Pekka Lundmark"),
        ("Where is Nokia headquartered?", "Espoo"),
    ]
    data.write_text("".join(json.dumps({"question": q, "answers": [a], "category": "c"}) + "\n" for q, a in rows))
    with judge_server() as server:
        server.knowledge = {"Who is the CEO of AMD?": "Lisa Su", "Who is the CEO of Nokia?": "Tim Cook"}
        setup = f"openai:{server.url}#tiny"
        config = AuditConfig(dataset=str(data), setups=(setup,), home=str(tmp_path / "home"), resamples=20)
        run = run_audit(config, tmp_path / "out")
    grades = [r.grade for r in run.records[setup]]
    assert grades == [Grade.CORRECT, Grade.INCORRECT, Grade.NOT_ATTEMPTED]
    assert len(server.requests) == 3 and server.requests[0]["model"] == "tiny"
    report = write_reports(run, tmp_path / "out")["setups"][setup]["overall"]
    assert report["hallucination_rate"]["value"] == pytest.approx(1 / 3)
    assert report["coverage"]["value"] == pytest.approx(2 / 3)
