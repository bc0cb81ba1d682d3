# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= build/demo
DEMO_CUSTOMERS ?= 20000
DEMO_MONTHS ?= 24

.PHONY: install browser demo test test-slow lint bench bench-foundation clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/segments synth --customers $(DEMO_CUSTOMERS) --months $(DEMO_MONTHS) --seed 7 --out $(DEMO) \
	    --overwrite
	$(BIN)/segments validate $(DEMO)/panel.parquet
	$(BIN)/segments tiers $(DEMO)/panel.parquet --out $(DEMO)/tiers.parquet --overwrite
	$(BIN)/segments train groups --panel $(DEMO)/panel.parquet --config experiments/demo.yaml \
	    --reference $(DEMO)/truth.parquet
	$(BIN)/segments train upgrade --panel $(DEMO)/panel.parquet --config experiments/demo.yaml
	$(BIN)/segments promote demo-groups --challenger --config experiments/demo.yaml \
	    --reason "make demo"
	$(BIN)/segments promote demo-upgrade --challenger --config experiments/demo.yaml \
	    --panel $(DEMO)/panel.parquet --reason "make demo"
	$(BIN)/segments score --panel $(DEMO)/panel.parquet --out $(DEMO)/scores \
	    --config experiments/demo.yaml --overwrite
	$(BIN)/segments growth $(DEMO)/panel.parquet --config experiments/demo.yaml \
	    --scores $(DEMO)/scores --by group --out $(DEMO)/growth.parquet --overwrite
	$(BIN)/segments plan --scores $(DEMO)/scores --out $(DEMO)/plan \
	    --config experiments/demo.yaml --overwrite
	@echo "demo output in $(DEMO)/: panel.parquet, truth.parquet, tiers.parquet, and"
	@echo "  scores/ (one row per customer: tier, group, p_upgrade, reasons, lever; _manifest.json, _drift.csv),"
	@echo "  growth.parquet (each customer-month's AUM change by source) and"
	@echo "  plan/ (service model per customer, managers per branch, the call list; summary.md)"
	@echo "MLflow runs and registered models (demo-groups, demo-upgrade) in ./mlflow.db;"
	@echo "audit trail:           $(BIN)/segments history demo-upgrade"
	@echo "browse them with:      $(BIN)/segments ui --port 5000   (http://127.0.0.1:5000)"

# `make test`: lint, then every test but those marked slow (real servers, subprocess kills,
# Spark; about 10 minutes on 2 cores). `make test-slow` runs the slow ones; CI (.ci/run)
# runs both.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -m "not slow"

test-slow: $(STAMP) browser
	$(BIN)/pytest -m slow

# `make browser`: Debian's Chromium and CJK fonts, for the test that reads the MLflow UI in
# a browser as a reviewer would (tests/test_ui_browser.py; Playwright drives it and
# downloads no browser). Installed when missing and the user may (root, apt-get); otherwise
# the test says what is missing and is skipped, except in CI where it fails.
browser:
	@if command -v chromium >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q .; then \
	    echo "browser: $$(chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        chromium fonts-noto-cjk >/dev/null && echo "browser: installed chromium"; \
	else \
	    echo "browser: no chromium (install Debian's chromium and fonts-noto-cjk)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# `make bench`: every benchmark at a size meant for 2 cores and 24 GiB (BENCH_* to resize);
# each script rewrites its own section of BENCHMARKS.md. The PyCaret comparisons build
# their own virtual environment (benchmarks/pycaret-requirements.txt) under build/.
BENCH_CUSTOMERS ?= 20000
BENCH_REPEATS ?= 5
# Runs of the slow outside steps (PyCaret compare_models: 1-3 min a run at 20k; a Spark
# session: ~25 s): 3 keeps `make bench` under 30 minutes. benchmarks/run_all.py records the
# time of every script and the total in BENCHMARKS.md (section make-bench@<size>).
BENCH_SLOW_REPEATS ?= 3
BENCH_DIR ?= build/bench
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --customers $(BENCH_CUSTOMERS) \
	    --repeats $(BENCH_REPEATS) --slow-repeats $(BENCH_SLOW_REPEATS) --workdir $(BENCH_DIR)

bench-foundation: $(STAMP)
	$(BIN)/python benchmarks/bench_foundation.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
