"""The factuality audit: setups answer questions, graders grade them, metrics with intervals, reports.

``factagent audit`` runs it from the shell; :func:`run_audit` then :func:`write_reports` from Python::

    run = run_audit(AuditConfig(dataset="world:test", setups=("standalone", "rag")), "reports/world")
    report = write_reports(run, "reports/world")
"""

from eval.audit._claims import ClaimChecker, ClaimSupport, split_claims
from eval.audit._datasets import Dataset, load_dataset, sample_evenly, world_questions
from eval.audit._errors import (
    AuditDatasetError,
    AuditError,
    JudgeUnavailableError,
    ResumeMismatchError,
    SetupUnavailableError,
)
from eval.audit._graders import EmbeddingGrader, ExactGrader, Grader, LLMJudgeGrader, is_abstention, pre_grade
from eval.audit._metrics import METRIC_NAMES, Estimate, Outcomes, estimate_all, point_metrics, risk_coverage
from eval.audit._report import build_report, render_html, render_markdown, write_reports
from eval.audit._runner import AnswerLog, AuditRun, Progress, answer_chunk, run_audit
from eval.audit._setups import AgentSetup, Asker, EndpointSetup, RagSetup, Setup, StandaloneSetup
from eval.audit._stack import AuditConfig, Stack, build_stack, prepare_world_memory
from eval.audit._types import AuditQuestion, Grade, Record, SetupAnswer
from eval.audit._world_zh import prepare_world_zh_memory

__all__ = [  # noqa: RUF022 -- plain sorted() order, which tests/test_package.py checks
    "AgentSetup",
    "AnswerLog",
    "Asker",
    "AuditConfig",
    "AuditDatasetError",
    "AuditError",
    "AuditQuestion",
    "AuditRun",
    "ClaimChecker",
    "ClaimSupport",
    "Dataset",
    "EmbeddingGrader",
    "EndpointSetup",
    "Estimate",
    "ExactGrader",
    "Grade",
    "Grader",
    "JudgeUnavailableError",
    "LLMJudgeGrader",
    "METRIC_NAMES",
    "Outcomes",
    "Progress",
    "RagSetup",
    "Record",
    "ResumeMismatchError",
    "Setup",
    "SetupAnswer",
    "SetupUnavailableError",
    "Stack",
    "StandaloneSetup",
    "answer_chunk",
    "build_report",
    "build_stack",
    "estimate_all",
    "is_abstention",
    "load_dataset",
    "point_metrics",
    "pre_grade",
    "prepare_world_memory",
    "prepare_world_zh_memory",
    "render_html",
    "render_markdown",
    "risk_coverage",
    "run_audit",
    "sample_evenly",
    "split_claims",
    "world_questions",
    "write_reports",
]
