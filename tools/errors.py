"""The one exception hierarchy of factagent.

Every error a user can cause or meet derives from :class:`FactagentError`, so a caller (the CLI, the
server, an agent tool) can turn any of them into a clear message with one ``except``::

    FactagentError
    ├── ConfigError               bad config file, home directory or setting
    ├── WorldFormatError          a reference-world file is missing or malformed
    ├── ModelError
    │   ├── ModelLoadError        no such directory, no weights, unreadable config
    │   ├── TokenizerMismatchError  tokenizer vocabulary does not fit the model's embeddings
    │   ├── ModelMismatchError    models to compare or merge differ in tensor names or shapes — also InvalidInputError
    │   ├── NonFiniteWeightError  a weight tensor holds NaN or inf (kinship, merging)
    │   └── UnsupportedLayoutError  circuit analysis cannot wrap this architecture (not GPT-2 / LLaMA)
    ├── EmbedderError             the embedding model cannot be loaded or given bad input
    ├── InvalidInputError         bad user input to a store (empty text, NaN vector, bad IRI); nothing changed
    │   ├── OutputExistsError     an output directory already exists (nothing is overwritten)
    │   ├── UnknownNamespaceError  a user_id / agent_id / run_id scope that holds nothing
    │   ├── ContradictoryStatementError  one message gives two objects to one functional (subject, relation)
    │   ├── InvalidDefinitionError  an empty or oversized concept definition
    │   ├── HierarchyCycleError   a subclass link that would close a cycle in the class hierarchy
    │   ├── StateConflictError    the request conflicts with the current state (an edit already rolled back)
    │   └── CheckpointMismatchError  a benchmark checkpoint was written by a different command (nothing resumed)
    ├── NotFoundError             no memory item, assertion or edit with that id
    │   └── UnknownEditError      no told edit (or quarantined statement) with that id
    ├── InterpretationError       an interpreter (e.g. an LLM) returned output that fails its schema
    ├── RateLimitedError          a user told more edits than the rate limit allows (``retry_after`` seconds)
    ├── PermissionDeniedError     a user's role does not allow the action (review, rolling back others' edits)
    ├── EditError                 a parametric edit could not be computed or applied; the model is unchanged
    │   ├── InvalidEditError      bad edit request (subject not in prompt, empty target) — also InvalidInputError
    │   │   ├── UnknownEditorError    no editor registered under that name
    │   │   └── LayerOutOfRangeError  a layer index the model does not have
    │   ├── NonFiniteUpdateError  the computed update holds NaN or inf (rejected before touching the model)
    │   ├── EditBatchTooLargeError  the batch does not fit in memory or the method's batch limit
    │   └── NotEnoughEditsError   a benchmark asked for more edits (T) than its pool has — also InvalidInputError
    ├── MergeError                a model merge (mergekit) failed; nothing was written to the output
    ├── ClusterError              Ray is missing or unreachable, or a Ray worker failed; no partial result
    ├── ServiceClosedError        the service is shutting down: the request was not taken (nothing done)
    ├── QueryError                a malformed SPARQL query or binding
    ├── StoreError                SQLite, FAISS or a SPARQL endpoint failed; the write was not applied
    │   ├── IndexCorruptError     a FAISS index file cannot be read (it is rebuilt from the database)
    │   └── IndexUnavailableError the Milvus index failed or is gone (SQLite is untouched; it is rebuilt)
    └── BackendError              an OpenAI-compatible endpoint failed
        ├── EndpointUnreachableError  connection refused, DNS failure
        ├── EndpointTimeoutError      no answer within the timeout (after retries)
        ├── EndpointStatusError       a non-success HTTP status (``status_code`` attribute)
        ├── MalformedResponseError    the body is not the JSON the protocol promises
        └── UnsupportedSignalError    the served model does not give this signal (e.g. prompt log-probabilities)

Foreign exceptions (httpx, transformers, safetensors, OSError) are caught where they happen and re-raised
as one of these with the cause chained.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CheckpointMismatchError",
    "ClusterError",
    "ConfigError",
    "ContradictoryStatementError",
    "EditBatchTooLargeError",
    "EditError",
    "EmbedderError",
    "EndpointStatusError",
    "EndpointTimeoutError",
    "EndpointUnreachableError",
    "FactagentError",
    "HierarchyCycleError",
    "IndexCorruptError",
    "IndexUnavailableError",
    "InterpretationError",
    "InvalidDefinitionError",
    "InvalidEditError",
    "InvalidInputError",
    "LayerOutOfRangeError",
    "MalformedResponseError",
    "MergeError",
    "ModelError",
    "ModelLoadError",
    "ModelMismatchError",
    "NonFiniteUpdateError",
    "NonFiniteWeightError",
    "NotEnoughEditsError",
    "NotFoundError",
    "OutputExistsError",
    "PermissionDeniedError",
    "QueryError",
    "RateLimitedError",
    "ServiceClosedError",
    "StateConflictError",
    "StoreError",
    "TokenizerMismatchError",
    "UnknownEditError",
    "UnknownEditorError",
    "UnknownNamespaceError",
    "UnsupportedLayoutError",
    "UnsupportedSignalError",
    "WorldFormatError",
]


class FactagentError(Exception):
    """Base class of every error factagent raises on purpose."""


class ConfigError(FactagentError):
    """The configuration (file, home directory, or a setting) is invalid."""


class ClusterError(FactagentError):
    """Ray is not installed or its cluster cannot be reached, or a worker failed; nothing partial is reported."""


class WorldFormatError(FactagentError):
    """A reference-world directory or one of its records is malformed."""


class ModelError(FactagentError):
    """A language model cannot be used."""


class ModelLoadError(ModelError):
    """A model directory does not exist, has no weights, or cannot be read."""


class TokenizerMismatchError(ModelError):
    """The tokenizer produces ids the model has no embeddings for."""


class UnsupportedLayoutError(ModelError):
    """Circuit analysis cannot wrap the model's architecture (only GPT-2 and LLaMA layouts are known)."""


class EmbedderError(FactagentError):
    """The sentence embedder cannot be loaded or was given bad input."""


class BackendError(FactagentError):
    """An OpenAI-compatible endpoint failed."""


class EndpointUnreachableError(BackendError):
    """The endpoint could not be reached (connection refused, unknown host)."""


class EndpointTimeoutError(BackendError):
    """The endpoint did not answer within the timeout, after all retries."""


class EndpointStatusError(BackendError):
    """The endpoint answered with a non-success HTTP status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class MalformedResponseError(BackendError):
    """The endpoint's body is not the JSON the chat-completions protocol promises."""


class UnsupportedSignalError(BackendError):
    """The served model does not give this signal (prompt log-probabilities on a chat API, say)."""


class InvalidInputError(FactagentError, ValueError):
    """Bad input to a store or query: it was rejected before anything changed."""


class UnknownNamespaceError(InvalidInputError):
    """A scope (user_id / agent_id / run_id) that no memory was ever written to."""


class NotFoundError(FactagentError, KeyError):
    """No memory item, assertion or edit has the given id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class QueryError(FactagentError):
    """A SPARQL query or one of its bindings is malformed."""


class StoreError(FactagentError):
    """A storage backend (SQLite, FAISS, a SPARQL endpoint) failed; the write was not applied."""


class IndexCorruptError(StoreError):
    """A FAISS index file on disk cannot be read; the store rebuilds it from the database."""


class IndexUnavailableError(StoreError):
    """The Milvus index is unreachable, failed or was dropped; SQLite is untouched and the index is rebuilt."""


class EditError(FactagentError):
    """A parametric edit could not be computed or applied; the model was left unchanged."""


class InvalidEditError(EditError, InvalidInputError):
    """An edit request or editor setting is invalid (subject not in the prompt, empty target, ...)."""


class UnknownEditorError(InvalidEditError):
    """No editor is registered under the requested name."""


class LayerOutOfRangeError(InvalidEditError):
    """An editor was configured with a layer index the model does not have."""


class NonFiniteUpdateError(EditError):
    """The computed update contains NaN or infinite values; it was rejected before touching the model."""


class EditBatchTooLargeError(EditError):
    """The batch of edit requests exceeds the method's limit or the memory available."""


class NotEnoughEditsError(EditError, InvalidInputError):
    """A benchmark asked for more sequential edits (T) than its pool of qualifying edits holds; nothing was edited."""


class ContradictoryStatementError(InvalidInputError):
    """One message gives two different objects to the same functional (subject, relation); nothing was applied."""


class InvalidDefinitionError(InvalidInputError):
    """A concept definition is empty or longer than the limit; nothing was written."""


class HierarchyCycleError(InvalidInputError):
    """A subclass link would make a concept its own ancestor (a cycle in rdfs:subClassOf); nothing was written."""


class StateConflictError(InvalidInputError):
    """The request conflicts with the current state (an edit already rolled back, or one a later edit built on).

    Nothing was changed; the HTTP API answers 409.
    """


class UnknownEditError(NotFoundError):
    """No told edit (or quarantined statement) has the given id; nothing was changed."""


class InterpretationError(FactagentError):
    """An interpreter's output (e.g. an LLM's JSON) does not match its schema; nothing was applied."""


class RateLimitedError(FactagentError):
    """A user exceeded the edit rate limit; ``retry_after`` is the wait in seconds before the next edit."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(FactagentError):
    """The user's role does not allow the action (reviewing quarantine, rolling back another user's edit)."""


class ModelMismatchError(ModelError, InvalidInputError):
    """Models that must share one architecture (kinship, merging) differ in tensor names or shapes."""


class NonFiniteWeightError(ModelError):
    """A weight tensor of a model holds NaN or inf."""


class CheckpointMismatchError(InvalidInputError):
    """A benchmark checkpoint directory holds the state of a different command; it is left as it was."""


class OutputExistsError(InvalidInputError):
    """An output directory already exists; it is left as it was."""


class ServiceClosedError(FactagentError):
    """The service is shutting down: the request was not taken, nothing was done."""


class MergeError(FactagentError):
    """A model merge failed (mergekit raised); nothing was written to the output directory."""
