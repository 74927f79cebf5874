"""Errors of the factuality audit, placed in factagent's one hierarchy (:mod:`tools.errors`)::

FactagentError
└── AuditError                    an audit cannot run or continue
    ├── AuditDatasetError         a dataset file is missing, of unknown format, or has a malformed row
    │                             (also WorldFormatError: file and line are named)
    ├── SetupUnavailableError     a setup that cannot be built here (the agent before it exists, a bad spec)
    ├── JudgeUnavailableError     the LLM judge's endpoint failed (also BackendError); answers graded so
    │                             far stay in ``answers.jsonl`` and the same command resumes
    └── ResumeMismatchError       the output directory holds a run with other settings (also ConfigError)
"""

from __future__ import annotations

from tools.errors import BackendError, ConfigError, FactagentError, WorldFormatError

__all__ = [
    "AuditDatasetError",
    "AuditError",
    "JudgeUnavailableError",
    "ResumeMismatchError",
    "SetupUnavailableError",
]


class AuditError(FactagentError):
    """An audit cannot run or continue."""


class AuditDatasetError(AuditError, WorldFormatError):
    """A dataset file is missing, of unknown format, or has a malformed row (the message names the line)."""


class SetupUnavailableError(AuditError):
    """A setup cannot be built (unknown name, the agent not available yet, a malformed endpoint spec)."""


class JudgeUnavailableError(AuditError, BackendError):
    """The LLM judge's endpoint failed; graded answers are kept for resuming."""


class ResumeMismatchError(AuditError, ConfigError):
    """The output directory holds a run made with other settings."""
