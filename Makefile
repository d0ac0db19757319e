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

# Benchmarks are not tests: each bench prints what it measured, side by side in one run, and
# records its figures in bench/results.json; bench/table.py prints them all as one table.
# warmsnap and flat_state need root and the engine; BENCH_MB sets warmsnap's data size (default
# 1024), BENCH_FLAT_RUNS the number of quick runs of flat_state (default 50).
# BENCH_QUICK=1: small sizes, one round (what CI runs, see tests/bench/).
BENCHES := bench/bridge_latency.py bench/warmsnap.py bench/flat_state.py bench/quick_vs_cold.py
bench: $(STAMP)
	rm -f $${BENCH_RESULTS:-bench/results.json}
	for script in $(BENCHES); do $(BIN)/python $$script || exit 1; done
	$(BIN)/python bench/table.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
