# `make run` runs the default experiment; `make test` runs the tests. Both set up .venv first.
PY ?= python3
# On a GPU box set TORCH= to keep the torch you have, or TORCH="torch==X" for another build.
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean wheel-check findings

$(BIN)/saematch: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first: a bare `torch` would pull a multi-GB CUDA build.
	$(if $(TORCH),$(BIN)/pip install -q "$(TORCH)")
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/saematch

install: $(BIN)/saematch

run: install
	$(BIN)/saematch $(ARGS)

test: install
	$(BIN)/pytest -q $(ARGS)

# What `pip install git+URL` or a cluster image gets: build the wheel, install it with its
# dependencies into a fresh venv, run `saematch` (dry run) from an empty folder elsewhere.
WHEEL_VENV ?= .venv-wheel
wheel-check: install
	rm -rf build dist $(WHEEL_VENV)
	$(BIN)/pip wheel -q --no-deps -w dist .
	$(PY) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q --upgrade pip
	$(if $(TORCH),$(WHEEL_VENV)/bin/pip install -q "$(TORCH)")
	$(WHEEL_VENV)/bin/pip install -q dist/saematch-*.whl
	d=$$(mktemp -d) && cd $$d && $(CURDIR)/$(WHEEL_VENV)/bin/saematch dry_run=true logger=none \
	  > dry_run.txt && grep -q "name: ground_truth" dry_run.txt && cd / && rm -rf $$d
	@echo "wheel-check: the wheel's saematch runs from an unrelated folder"

# docs/findings.md from result files (docs/data/), recomputing only what changed (cached):
# `make findings ARGS="-- --knob recipe=published"` passes knobs to the data scripts.
findings: install
	$(BIN)/python scripts/make_findings.py --run $(ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(WHEEL_VENV) build dist outputs/* multirun
