# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= build/demo
DEMO_CUSTOMERS ?= 20000
DEMO_MONTHS ?= 24

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/segments synth --customers $(DEMO_CUSTOMERS) --months $(DEMO_MONTHS) --seed 7 --out $(DEMO)
	$(BIN)/segments validate $(DEMO)/panel.parquet
	$(BIN)/segments tiers $(DEMO)/panel.parquet --out $(DEMO)/tiers.parquet
	$(BIN)/segments train groups --panel $(DEMO)/panel.parquet --config experiments/demo.yaml \
	    --reference $(DEMO)/truth.parquet
	$(BIN)/segments train upgrade --panel $(DEMO)/panel.parquet --config experiments/demo.yaml
	$(BIN)/segments promote demo-groups --challenger --config experiments/demo.yaml \
	    --reason "make demo"
	$(BIN)/segments promote demo-upgrade --challenger --config experiments/demo.yaml \
	    --panel $(DEMO)/panel.parquet --reason "make demo"
	$(BIN)/segments score --panel $(DEMO)/panel.parquet --out $(DEMO)/scores \
	    --config experiments/demo.yaml --overwrite
	@echo "demo output in $(DEMO)/: panel.parquet, truth.parquet, tiers.parquet, and"
	@echo "  scores/ (one row per customer: tier, group, p_upgrade, reasons; _manifest.json, _drift.csv)"
	@echo "MLflow runs and registered models (demo-groups, demo-upgrade) in ./mlflow.db;"
	@echo "audit trail:           $(BIN)/segments history demo-upgrade"
	@echo "browse them with:      $(BIN)/segments ui --port 5000   (http://127.0.0.1:5000)"

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_foundation.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
