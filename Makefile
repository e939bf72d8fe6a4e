# The two commands of the README:
#   make repro   set up .venv if needed, then `dvc repro` on the default profile -> figures/
#   make test    set up .venv if needed, then ruff, pytest (+ doctests of src) and nbval over every notebook
#   make gpu     (on a machine with an NVIDIA GPU) the gpu profile: plan check, training benchmark, dvc repro
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# HF tokenizers trains and encodes on every core (1.3-1.6x faster BPE training on 2 cores, identical
# tokenizers: README "Threads"); set explicitly so a forked child does not print tokenizers' fork warning
export TOKENIZERS_PARALLELISM ?= true
export MPLBACKEND := Agg
# idle OpenMP threads sleep instead of spin (tokstudy.threads); a value set in the shell wins
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup repro test smoke bench gpu clean-smoke notebooks-py dvc-deps

$(BIN)/.tokstudy-installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt -e .
	touch $@

# bubblewrap runs model-written code (tokstudy.sandbox); installed here when we are root with apt-get
setup: $(BIN)/.tokstudy-installed
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq bubblewrap; \
	  else \
	    echo "WARNING: bubblewrap (bwrap) is missing; evaluating generated code will refuse to run." \
	         "Install it: sudo apt-get install bubblewrap (README, Environment)" >&2; \
	  fi; }

repro: setup
	$(BIN)/dvc config core.analytics false --local || true
	$(BIN)/dvc repro
	$(BIN)/python tools/prune_lock.py

# ruff first (pyproject [tool.ruff]); the smoke inputs (every dvc.yaml stage at profile smoke, in one process:
# steps never build their own inputs); then tests/ (notebook/script pairs in sync included) and the doctests of
# src/tokstudy (--doctest-modules), nbval over every notebook, and the advisory size report (fails nothing)
test: setup smoke
	$(BIN)/ruff check src tests benchmarks notebooks tools
	$(BIN)/pytest tests src/tokstudy
	$(BIN)/pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
	$(BIN)/python tools/size_report.py

# the smoke inputs that the tests and nbval read (about a minute on 2 cores)
smoke: setup
	$(BIN)/python -m tokstudy.stages all --profile smoke

# rewrite dvc.yaml's code deps from the import walk (tests/test_dvc_deps.py checks them)
dvc-deps: setup
	$(BIN)/python tools/dvc_deps.py

bench: setup
	$(BIN)/python benchmarks/bench_bpe_engines.py

# regenerate every notebook's paired script notebooks/py/NAME.py from the notebook (jupytext.toml pairs them;
# tests/test_notebooks_paired.py, part of `make test`, fails while a pair differs)
notebooks-py: setup
	for nb in notebooks/*.ipynb; do $(BIN)/jupytext --quiet --to py:percent -o notebooks/py/$$(basename $$nb .ipynb).py $$nb; done

# The gpu profile on one H100 (README "GPU"): refuse without a GPU, check every stage's planned time
# (tokstudy.gpuplan, <= 10 min each), measure tokens/s and MFU against the H100 bf16 dense peak
# (results/gpu/bench_train.json), then run the pipeline at profile=gpu (results/gpu/, figures/gpu/).
gpu: setup
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'make gpu: torch sees no CUDA GPU; run it on a GPU machine (README, GPU)')"
	$(BIN)/python -m tokstudy.gpuplan --profile gpu
	mkdir -p results/gpu figures/gpu
	$(BIN)/python benchmarks/bench_train.py --json results/gpu/bench_train.json
	$(BIN)/dvc config core.analytics false --local || true
	$(BIN)/dvc exp run -S profile=gpu

clean-smoke:
	rm -rf data/smoke results/smoke figures/smoke
