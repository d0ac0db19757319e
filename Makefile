# The two commands of the quick start live here: `make test` (and, later, `make demo`).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := core/ccci_core bridge/ccci_bridge plugin/ccci_plugin host-agent/ccci_agent

.PHONY: test lint typecheck pytest bench clean

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

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Snapshot/restore throughput beside plain GNU tar (root + Docker; not part of `make test`).
bench: $(STAMP)
	$(BIN)/python bench/warmsnap.py $(BENCH_MB)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
