"""Real third-party OpenAI-compatible inference servers on loopback, serving the reference GPT-2.

Two servers, both maintained by others and installed from PyPI alone:

- **transformers serve** (Hugging Face's, in the pinned ``transformers``; needs only fastapi and uvicorn):
  starts in seconds from the HF directory itself, no build, no conversion. Its ``/v1/completions`` takes the
  raw prompt but ignores ``logprobs`` and ``echo``: the agent over it runs on answers and paraphrase
  agreement only (the degraded path, tested for real). CI always runs it.
- **llama.cpp's server** via ``llama-cpp-python`` (an sdist built with the machine's cmake and gcc:
  ``.ci/llama_server.sh`` builds it once, niced, and caches the wheel): ``/v1/completions`` gives
  ``logprobs`` (first-token probability and margin) and ``echo`` with prompt log-probabilities (familiarity,
  pmi), i.e. every signal the agent uses in-process. Its tests run where the wheel is installed.

vLLM's CPU build needs a toolchain download and far more memory than this machine has; Ollama is not on PyPI.

Converting the reference model for llama.cpp: the sdist's ``vendor/llama.cpp/convert_hf_to_gguf.py``
converts GPT-2, with two things the reference model lacks: ``n_ctx`` in ``config.json`` (taken from
``n_positions``), and a pre-tokenizer the converter recognises: it identifies pre-tokenizers by hashing their
output on a test text, and a freshly trained tokenizer's vocabulary gives an unknown hash. The reference
tokenizer's pre-tokenizer *is* GPT-2's (byte-level BPE with GPT-2's split regex), which
:func:`convert_to_gguf` checks before declaring it so.

Example:
    PYTHONPATH=. python -m bench.inference_servers serve --server transformers     # until Ctrl-C
    PYTHONPATH=. python -m bench.inference_servers convert --src /path/to/llama_cpp_python-0.3.36 --out m.gguf
    PYTHONPATH=. python -m bench.inference_servers serve --server llama --gguf m.gguf --port 8089
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_MODEL = ROOT / "eval" / "world" / "models" / "gpt2-world"
MODEL_ALIAS = "gpt2-world"
# where .ci/llama_server.sh leaves the unpacked sdist and the converted model (kept between CI runs)
CACHE = Path(os.environ.get("FACTAGENT_LLAMA_CACHE", Path.home() / ".cache" / "factagent" / "llama"))

_CONVERT = """
import runpy, sys
src = sys.argv[1]
sys.path.insert(0, src)
sys.path.insert(1, src + "/gguf-py")
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"  # checked by the caller
sys.argv = ["convert_hf_to_gguf.py", sys.argv[2], "--outfile", sys.argv[3], "--outtype", "f32"]
runpy.run_path(src + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def _gpt2_pretokenizer(model_dir: Path) -> bool:
    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    pre, model = data.get("pre_tokenizer") or {}, data.get("model") or {}
    return model.get("type") == "BPE" and pre.get("type") == "ByteLevel" and pre.get("use_regex", True)


def convert_to_gguf(src: Path, out: Path, model_dir: Path = REFERENCE_MODEL) -> Path:
    """Convert ``model_dir`` (an HF GPT-2 directory) to an f32 GGUF file at ``out`` with the sdist's converter.

    Raises:
        ValueError: the tokenizer is not byte-level BPE with GPT-2's split (it could not be declared ``gpt-2``).
        RuntimeError: the converter failed (its output is in the message).
    """
    if not _gpt2_pretokenizer(model_dir):
        raise ValueError(f"{model_dir}: tokenizer is not byte-level BPE with GPT-2's pre-tokenizer")
    converter = src / "vendor" / "llama.cpp"
    with tempfile.TemporaryDirectory(prefix="gguf-") as tmp:
        copy = Path(tmp) / model_dir.name
        shutil.copytree(model_dir, copy)
        config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
        config.setdefault("n_ctx", config["n_positions"])
        (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
        out.parent.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(
            [sys.executable, "-c", _CONVERT, str(converter), str(copy), str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    if run.returncode != 0 or not out.is_file():
        raise RuntimeError(f"GGUF conversion failed:\n{run.stderr[-2000:]}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    """A started server: its API root and the model name it answers to."""

    base_url: str
    model: str
    pid: int


@contextmanager
def _started(cmd: list[str], env: dict[str, str], root: str, probe: str, ready_s: float) -> Iterator[int]:
    """Run ``cmd`` in its own session until ``root + probe`` answers 200; stop it (and only it) on exit."""
    log = tempfile.TemporaryFile()  # noqa: SIM115  # read back only if the server fails to start; closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{cmd[0]} exited ({proc.returncode}):\n{log.read()[-2000:].decode()}")
            try:
                if httpx.get(root + probe, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd[:3])} did not answer within {ready_s:g}s")
            time.sleep(0.2)
        yield proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: only what it started
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@contextmanager
def llama_server(
    gguf: Path, *, port: int | None = None, threads: int = 1, ready_s: float = 120.0
) -> Iterator[RunningServer]:
    """Start ``python -m llama_cpp.server`` on loopback serving ``gguf`` (as ``gpt2-world``); stop it on exit.

    Raises:
        RuntimeError: the server exited or did not answer ``/v1/models`` within ``ready_s`` seconds.
    """
    port = port or free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "256", "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--logits_all", "true", "--verbose", "false",
    ]  # fmt: skip
    with _started(cmd, dict(os.environ), f"http://127.0.0.1:{port}", "/v1/models", ready_s) as pid:
        yield RunningServer(f"http://127.0.0.1:{port}/v1", MODEL_ALIAS, pid)


def llama_available() -> bool:
    """``llama_cpp.server`` imports here (the wheel from ``.ci/llama_server.sh`` is installed)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and cached_gguf() is not None


@contextmanager
def transformers_server(
    model_dir: Path = REFERENCE_MODEL, *, port: int | None = None, ready_s: float = 180.0
) -> Iterator[RunningServer]:
    """Start ``transformers serve`` on loopback with ``model_dir`` preloaded (the model's name is its path).

    Raises:
        RuntimeError: the server exited or did not answer ``/health`` within ``ready_s`` seconds.
    """
    port = port or free_port()
    exe = Path(sys.executable).with_name("transformers")
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with _started(cmd, env, f"http://127.0.0.1:{port}", "/health", ready_s) as pid:
        yield RunningServer(f"http://127.0.0.1:{port}/v1", str(model_dir), pid)


def cached_gguf() -> Path | None:
    """The converted reference model: ``$FACTAGENT_LLAMA_GGUF``, else the newest one ``.ci/llama_server.sh``
    left in the cache (``None`` when there is none)."""
    env = os.environ.get("FACTAGENT_LLAMA_GGUF")
    if env:
        return Path(env) if Path(env).is_file() else None
    found = sorted(CACHE.glob("gpt2-world-*.gguf"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.inference_servers", description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="convert the reference model to GGUF (for llama.cpp)")
    conv.add_argument("--src", type=Path, required=True, help="the unpacked llama-cpp-python sdist")
    conv.add_argument("--out", type=Path, required=True)
    conv.add_argument("--model", type=Path, default=REFERENCE_MODEL)
    serve = sub.add_parser("serve", help="serve the reference model on loopback until interrupted")
    serve.add_argument("--server", choices=["transformers", "llama"], default="transformers")
    serve.add_argument("--gguf", type=Path, default=None, help="llama: the converted model (default: cached)")
    serve.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.cmd == "convert":
        sys.stdout.write(f"{convert_to_gguf(args.src, args.out, args.model)}\n")
        return 0
    gguf: Path | None = args.gguf or cached_gguf()
    server = transformers_server(port=args.port or None)
    if args.server == "llama":
        if gguf is None:
            parser.error("no --gguf and no cached conversion (run .ci/llama_server.sh)")
        server = llama_server(gguf, port=args.port or None)
    with server as srv:
        sys.stdout.write(f"{srv.base_url} model={srv.model}\n")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
