"""Telling the agent facts: OneEdit's Interpreter -> Controller -> Editor, with exact rollback and history.

``TellPipeline.tell(statement, user)`` reads a message (:class:`TemplateInterpreter` from the schema's
templates and entity linking, then the learned :class:`TripleReader` for free phrasings, or
:class:`LLMInterpreter` over an OpenAI-compatible endpoint), decides what
it changes (:class:`Controller`: schema conflicts, trust and quarantine, rate limits, inverse and composed
facts, the edit id) and writes it (:class:`TellEditor`: KG and vector memory in one transaction, an edit
log, optionally the model's weights, journaled). ``rollback(edit_id)`` undoes all of it together;
``history(subject)`` lists the edits about a subject.
"""

from agent.tell._acceptance import Acceptance
from agent.tell._controller import Controller, Decision, ModelBelief, augment
from agent.tell._editor import TellEditor
from agent.tell._interpreter import Interpreter, TemplateInterpreter
from agent.tell._llm_interpreter import LLMInterpreter, LLMReply, LLMTriple
from agent.tell._log import EditLog
from agent.tell._parametric import ParametricEditor
from agent.tell._phrasings import load_statement_phrasings
from agent.tell._pipeline import TellPipeline
from agent.tell._pronouns import PronounKind, has_pronoun, pronoun_fits, pronoun_kind, with_antecedent
from agent.tell._reader import FactSource, Reading, TokenEncoder, TripleReader
from agent.tell._reader_calibrate import TrainReport, calibrate_reader
from agent.tell._reader_model import ReaderModel, default_reader_path
from agent.tell._reader_train import train_reader
from agent.tell._reader_tune import TuneSettings, fine_tune_reader
from agent.tell._records import (
    BulkFact,
    BulkLoaded,
    Claim,
    EditRecord,
    Interpretation,
    QuarantineItem,
    Role,
    RollbackResult,
    TellResult,
)
from agent.tell._trust import RateLimiter, TrustPolicy
from agent.tell._zh_interpreter import ZhInterpreter

__all__ = [
    "Acceptance",
    "BulkFact",
    "BulkLoaded",
    "Claim",
    "Controller",
    "Decision",
    "EditLog",
    "EditRecord",
    "FactSource",
    "Interpretation",
    "Interpreter",
    "LLMInterpreter",
    "LLMReply",
    "LLMTriple",
    "ModelBelief",
    "ParametricEditor",
    "PronounKind",
    "QuarantineItem",
    "RateLimiter",
    "ReaderModel",
    "Reading",
    "Role",
    "RollbackResult",
    "TellEditor",
    "TellPipeline",
    "TellResult",
    "TemplateInterpreter",
    "TokenEncoder",
    "TrainReport",
    "TripleReader",
    "TrustPolicy",
    "TuneSettings",
    "ZhInterpreter",
    "augment",
    "calibrate_reader",
    "default_reader_path",
    "fine_tune_reader",
    "has_pronoun",
    "load_statement_phrasings",
    "pronoun_fits",
    "pronoun_kind",
    "train_reader",
    "with_antecedent",
]
