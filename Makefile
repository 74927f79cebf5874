# Set-up and the two jobs of the README. Everything installs into .venv; torch is pinned first so that pip
# takes the CPU wheel instead of pulling CUDA packages.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The tests run in one worker per core, at most four (pytest-xdist; each worker starts its own Ray and
# servers), each test file on one worker so that its module fixtures load once, and one torch thread per
# worker: two workers at two threads each would oversubscribe a 2-core machine. `make test TEST_WORKERS=0`
# runs them in this process, one after another.
TEST_WORKERS ?= auto
TEST_THREADS ?= 1

.PHONY: install demo test lint check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/factagent demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy agent memory tools kg eval tests bench
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
