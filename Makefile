# `make run` runs the default experiment; `make test` runs the tests. Both set up .venv first.
PY ?= python3
# On a GPU box set TORCH= to keep the torch you have, or TORCH="torch==X" for another build.
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean wheel-check findings gpu-check

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

# On a machine with a CUDA GPU, with a CUDA build of torch (`make gpu-check TORCH=torch`:
# from PyPI, on a fresh .venv; TORCH= keeps the torch a venv has): the GPU tests (pytest -m
# gpu), then the streamed solver on the GPU at 65k, 262k and 1M (decoder; features generated
# in row chunks, 19 GB of host memory at 1M) against the fp32 GEMM of the same pair on the
# GPU, ratios printed at the end and the whole log in outputs/gpu-check.log. Fails, never
# skips, where torch sees no GPU. docs/benchmarks.md ("A 1M × 1M pair on one 80 GB GPU") says
# what to expect and how long it takes.
GPU_WIDTHS ?= 65536 262144 1048576
GPU_BUDGETS ?= 8GB 24GB 64GB
gpu-check: install
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
	  f'gpu-check: torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees no GPU. ' \
	  'Run it on a machine with one, with a CUDA build of torch (make gpu-check TORCH=torch).')"
	$(BIN)/pytest -q -m gpu -rs tests/test_matching_gpu.py
	mkdir -p outputs
	bash -o pipefail -c '$(BIN)/python scripts/bench_matching.py --device cuda --chunked \
	  --mode decoder --widths $(GPU_WIDTHS) --max-memory $(GPU_BUDGETS) \
	  --gemm-full-below 300000 --gemm-rows 65536 2>&1 | tee outputs/gpu-check.log'
	@echo "gpu-check: ratios (auto / fp32 GEMM on the GPU) from outputs/gpu-check.log"
	@grep -E "^GPU|^width|fp32 GEMM|certificate" outputs/gpu-check.log

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(WHEEL_VENV) build dist outputs/* multirun
