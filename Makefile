# The two commands of the quick start live here: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := core/ccci_core bridge/ccci_bridge plugin/ccci_plugin host-agent/ccci_agent

.PHONY: test lint typecheck pytest demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(PACKAGES)

# Two workers, one test module per worker (`--dist loadfile`): a module's engine fixtures stay in one
# process. PYTEST_WORKERS=0 runs serially (e.g. to read one failure's log in order).
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test: lint typecheck pytest

# The main job, for real on this machine's engine (swarm mode, root): see demo/warm.py.
demo: $(STAMP)
	$(BIN)/python demo/warm.py

# Benchmarks are not tests: each bench/*.py prints what it measured, side by side in one run.
# The warmsnap bench needs root and the engine; BENCH_MB sets its data size (default 512).
bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
