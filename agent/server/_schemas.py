"""The HTTP API's wire format: pydantic models shared by the server and :mod:`agent.client`.

Requests reject unknown fields (they come from untrusted callers); responses are plain data. Nothing here
imports FastAPI, so the client stays light.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

__all__ = [
    "AnswerOut",
    "AskRequest",
    "AuditJobOut",
    "AuditRequest",
    "CitationOut",
    "EditOut",
    "EditTriplesOut",
    "EditsOut",
    "ErrorBody",
    "ErrorDetail",
    "FactCreate",
    "FactHit",
    "FactOut",
    "FactPatch",
    "FactSearchOut",
    "HealthOut",
    "HistoryOut",
    "RollbackOut",
    "TellOut",
    "TellRequest",
    "TripleModel",
]

NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
Namespace = str


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TripleModel(BaseModel):
    """A fact: subject and object labels, relation id (``company_ceo``)."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1_000)
    relation: str = Field(min_length=1, max_length=200)
    object: str = Field(min_length=1, max_length=1_000)


class ErrorDetail(BaseModel):
    """What went wrong (the OpenAI error shape, so OpenAI clients read it too)."""

    type: str  # invalid_request | unauthorized | forbidden | not_found | conflict | too_large | rate_limited | ...
    message: str
    code: int
    param: str | None = None
    retry_after: float | None = None


class ErrorBody(BaseModel):
    """Every non-2xx response body."""

    error: ErrorDetail


class AskRequest(_Request):
    question: str = Field(min_length=1, max_length=2_000, description="one question")
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN, description="default: the key's first")


class CitationOut(BaseModel):
    text: str
    origin: str
    score: float
    item_id: str | None = None
    assertion_id: str | None = None
    edit_id: str | None = None
    who: str | None = None


class AnswerOut(BaseModel):
    """The agent's answer: ``action`` says where it came from (``abstain`` means it declined)."""

    text: str
    action: str
    confidence: float
    reason: str
    latency_s: float
    model_calls: int = 0  # prompts sent to the model (requests, for a served model)
    citations: list[CitationOut]


class TellRequest(_Request):
    statement: str = Field(min_length=1, max_length=4_000, description="a fact in plain English")
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)


class TellOut(BaseModel):
    """What telling did: ``status`` is applied | quarantined | not_an_edit | noop | free_text."""

    status: str
    kind: str
    edit_id: str | None
    quarantine_id: str | None
    message: str
    triples: list[TripleModel]
    augmented: list[TripleModel]
    superseded: list[TripleModel]


class FactCreate(_Request):
    text: str = Field(min_length=1, max_length=20_000)
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    triple: TripleModel | None = Field(default=None, description="also asserted in the knowledge graph")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=32)


class FactPatch(_Request):
    """A new version of a fact: at least one of ``text``, ``triple`` and ``metadata`` (minProperties: 1).

    A new ``triple`` changes the fact's object in the knowledge graph too (same subject and relation); a new
    ``text`` alone keeps the fact's triple (the text is not re-interpreted).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # absent means "unchanged"; an explicit null is refused, as the schema (no null) says
    text: Annotated[str | None, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 20_000})] = Field(
        default=None, min_length=1, max_length=20_000
    )
    metadata: Annotated[
        dict[str, str | int | float | bool] | None,
        WithJsonSchema(
            {
                "type": "object",
                "maxProperties": 32,
                "additionalProperties": {"anyOf": [{"type": t} for t in ("string", "integer", "number", "boolean")]},
            }
        ),
    ] = Field(default=None, max_length=32)
    triple: Annotated[TripleModel | None, WithJsonSchema(TripleModel.model_json_schema())] = Field(
        default=None, description="the fact's new triple (its object changes in the knowledge graph too)"
    )

    @field_validator("text", "metadata", "triple", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("omit the field to leave it unchanged (null is not a value)")
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> FactPatch:
        if self.text is None and self.metadata is None and self.triple is None:
            raise ValueError("give a new text, triple or metadata")
        return self


class FactOut(BaseModel):
    id: str
    version: int
    text: str
    namespace: str | None
    triple: TripleModel | None
    source: str | None
    status: str
    created_at: datetime
    metadata: dict[str, str | int | float | bool]


class FactHit(BaseModel):
    fact: FactOut
    score: float  # cosine similarity, higher is more similar


class FactSearchOut(BaseModel):
    hits: list[FactHit]


EDIT_PREVIEW = 20  # triples listed with an edit; GET /v1/edits/{edit_id}/triples pages through all of them


class EditOut(BaseModel):
    """One edit; a bulk load is one edit of many facts: ``triples`` lists the first few of its
    ``triple_count`` facts, ``GET /v1/edits/{edit_id}/triples`` pages through all."""

    edit_id: str
    origin: Literal["tell", "kg"]
    who: str
    created_at: datetime
    namespace: str
    text: str
    status: str
    triples: list[TripleModel] = Field(description=f"the first {EDIT_PREVIEW} facts the edit states")
    triple_count: int = Field(ge=0, description="how many facts the edit states")


class EditsOut(BaseModel):
    edits: list[EditOut]
    next_offset: int | None = Field(default=None, description="the offset of the next page; null on the last")


class EditTriplesOut(BaseModel):
    """One page of the facts an edit states, in the order it stated them."""

    edit_id: str
    total: int
    offset: int
    triples: list[TripleModel]
    next_offset: int | None = Field(default=None, description="the offset of the next page; null on the last")


class HistoryOut(BaseModel):
    subject: str
    edits: list[EditOut]


class RollbackOut(BaseModel):
    edit_id: str
    assertions: int
    memory_versions: int
    message: str


class AuditRequest(_Request):
    dataset: str = Field(default="world:test", min_length=1, max_length=500, pattern=r"^world:[a-z]+$")
    setups: list[Literal["standalone", "rag", "agent"]] = Field(default=["standalone"], min_length=1, max_length=3)
    limit: int = Field(default=20, ge=1, le=5_000)
    grader: Literal["exact", "embedding"] = "exact"


class AuditJobOut(BaseModel):
    """An audit job: ``status`` is queued | running | done | failed; ``progress`` holds each setup's answers
    ``[done, total]`` once the run has started; ``result`` holds metrics when done."""

    id: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    finished_at: datetime | None = None
    request: AuditRequest
    progress: dict[str, list[int]] | None = None
    error: str | None = None
    result: dict[str, dict[str, float]] | None = None


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    uptime_s: float


class QuarantineOut(BaseModel):
    """A statement held for review: who told it, when, in which namespace, what, and what it contradicts."""

    id: str
    user: str
    created_at: datetime
    namespace: str
    text: str
    triples: list[TripleModel]
    reason: str = Field(description="why it was held: the trusted fact it contradicts and who asserted it")
    status: Literal["pending", "approved", "rejected"]
    reviewed_by: str | None = None
    edit_id: str | None = Field(default=None, description="the edit that applied it, once accepted")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="posted with the fact; the applied fact keeps it"
    )


class QuarantineListOut(BaseModel):
    items: list[QuarantineOut]


class ReviewOut(BaseModel):
    """The reviewed item and, when accepted, what applying it did."""

    item: QuarantineOut
    applied: TellOut | None = None


class DetoxRequest(_Request):
    """One detox instance: the adversarial input, the safe response to teach, the unsafe one (for DINM)."""

    adversarial_input: str = Field(min_length=1, max_length=2_000)
    safe_response: str = Field(min_length=1, max_length=2_000)
    unsafe_response: str | None = Field(default=None, min_length=1, max_length=2_000)
    method: Literal["dinm", "ft-l"] = "dinm"
    layer: int | None = Field(default=None, ge=0, le=1_000)


class DetoxOut(BaseModel):
    edit_id: str
    method: str
    layer: int | None
    before: str
    after: str


class DetoxRollbackOut(BaseModel):
    edit_id: str
    rolled_back: bool
