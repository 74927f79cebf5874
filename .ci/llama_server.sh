#!/usr/bin/env bash
# Install llama.cpp's OpenAI-compatible server (llama-cpp-python, PyPI sdist) into the venv and convert the
# reference model to GGUF, for the served-model tests and bench/served_latency.py. Both results are cached
# under $FACTAGENT_LLAMA_CACHE (default ~/.cache/factagent/llama): the wheel takes ~10-20 min to build on 2
# cores, so it is built once, niced, and reused by later CI runs on the same machine.
# Usage: bash .ci/llama_server.sh [PYTHON]   (prints the GGUF path on its last line)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
VER=0.3.36
CACHE=${FACTAGENT_LLAMA_CACHE:-$HOME/.cache/factagent/llama}
SRC=$CACHE/src/llama_cpp_python-$VER
mkdir -p "$CACHE/wheels" "$CACHE/sdist" "$CACHE/src"
if [ ! -f "$CACHE/sdist/llama_cpp_python-$VER.tar.gz" ]; then
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$CACHE/sdist"
fi
if ! ls "$CACHE/wheels/llama_cpp_python-$VER-"*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $VER (cached in $CACHE/wheels) ..." >&2
    # generic x86-64 (no -march=native), no llava/mtmd, tools, examples or server binaries, no OpenMP
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 10 "$PY" -m pip wheel --quiet --no-deps \
        "$CACHE/sdist/llama_cpp_python-$VER.tar.gz" -w "$CACHE/wheels"
fi
# the server's own dependencies, pinned (pyproject's [llama] extra); --no-deps keeps torch & co. where they are
"$PY" -m pip install --quiet --no-deps --find-links "$CACHE/wheels" "llama-cpp-python==$VER" \
    diskcache==5.6.3 pydantic-settings==2.16.3 python-dotenv==1.2.4 starlette-context==0.3.6
if [ ! -d "$SRC/vendor/llama.cpp/conversion" ]; then
    tar xzf "$CACHE/sdist/llama_cpp_python-$VER.tar.gz" -C "$CACHE/src" --wildcards \
        "llama_cpp_python-$VER/vendor/llama.cpp/convert_hf_to_gguf.py" \
        "llama_cpp_python-$VER/vendor/llama.cpp/conversion/*" "llama_cpp_python-$VER/vendor/llama.cpp/gguf-py/*"
fi
# the GGUF is keyed by the weights' digest: a retrained reference model is converted again
SHA=$(sha256sum eval/world/models/gpt2-world/model.safetensors | cut -c1-12)
GGUF=$CACHE/gpt2-world-$SHA.gguf
if [ ! -f "$GGUF" ]; then
    PYTHONPATH=. "$PY" -m bench.inference_servers convert --src "$SRC" --out "$GGUF" >&2
fi
echo "$GGUF"
