#!/usr/bin/env bash
# The GPU benchmarks, on one GPU machine, within DEADLINE seconds (default 540: one 10-minute call with
# room for the set-up); each writes its log to OUT_DIR, in this order, and a step that no longer fits
# is skipped and named:
#   1. bench.txt:   `make bench` on the GPU: plain mteb twice, cmteb cold and warm (bge-large-shaped);
#   2. encoder.txt: the encoder against sentence-transformers, short texts and 512 tokens;
#   3. split.txt:   where the encoder's time goes on short texts (bench/encoder_split.py);
#      traced.txt:  passes eager against traced, alone and beside Python work (bench/traced_rate.py);
#   4. full.txt:    `make bench-full` at FULL_SCALE with a bge-base-shaped model, stopped at FULL_LIMIT s
#                   (FULL_LEVER: a lever of bench/lever_off.py it runs with off, default none);
#      tokens.txt:  tokenising the long-passage corpora whole against from prefixes, on the host's cores
#                   (bench/tokenize_rate.py at TOKENS_SCALE, default 0.5);
#   5. forward.txt: the network alone at fixed shapes (bench/forward_rate.py, bge-large-shaped);
#   6. startup.txt: where a cold run's start goes (bench/startup.py);
#   7. workers.txt: the per-GPU worker path against the one-process path;
#   8. large.txt:   `make bench-full` at LARGE_SCALE (default 0.5) with a bge-large-shaped model, stopped at
#                   LARGE_LIMIT s (default 480): not in the default STEPS, it fills a 10-minute call alone.
# STEPS names the steps to run (default: 1 to 7; `STEPS=large` for the 8th). Models have random weights
# (no real BGE weights offline) and the tokenizer of TOKENIZER_DIR (m3e-small's bert-base-chinese
# vocabulary). Usage: bench/gpu.sh TOKENIZER_DIR OUT_DIR
set -uo pipefail
TOKENIZER_DIR=${1:?tokenizer folder}
OUT_DIR=${2:?output folder}
FULL_SCALE=${FULL_SCALE:-0.25}
FULL_LIMIT=${FULL_LIMIT:-150}
LARGE_SCALE=${LARGE_SCALE:-0.5}
LARGE_LIMIT=${LARGE_LIMIT:-480}
STEPS=${STEPS:-bench encoder split traced full tokens forward startup workers}
STARTED=$(date +%s)
DEADLINE=${DEADLINE:-540}
# fits SECONDS: whether a step of at most SECONDS still ends before the deadline (else it is named as skipped).
fits() { (( $(date +%s) - STARTED + $1 <= DEADLINE )) || { echo "skipped: $2 needs $1 s, not left"; return 1; }; }
# runs NAME SECONDS: whether step NAME is one of STEPS and still fits.
runs() { [[ " $STEPS " == *" $1 "* ]] && fits "$2" "$1"; }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"
# Where the image writes no bytecode, every process would compile torch's and mteb's modules again
# (about 9 s each): compile them once into a cache of their own, as an installed environment has them.
export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-$(mktemp -d)}
SITE=$($PY -c "import importlib.util, os; print(os.path.dirname(os.path.dirname(importlib.util.find_spec('torch').origin)))")
# Packages carried in on PYTHONPATH (wheels unpacked with --no-compile) are compiled too.
$PY -m compileall -q -j 0 cmteb bench tools "$SITE" ${PYTHONPATH:+${PYTHONPATH//:/ }} >/dev/null 2>&1
LARGE=$(mktemp -d)/bge-large-shaped
$PY -c "import sys; sys.path.insert(0, 'bench'); from figures import shaped_model; from build_mirror import build; \
from pathlib import Path; shaped_model('large', Path('$TOKENIZER_DIR'), Path('$LARGE')); build(Path('$LARGE').parent / 'mirror')"
GPU=(--device cuda --precision fp16 --batch-size 256)
# BENCH_ALSO: flags of one more cold cmteb run timed beside the others (e.g. "--devices cuda:0"); BENCH_LEVER:
# a lever of bench/lever_off.py that run has off (default trace: the GPU's passes eager).
runs bench "${BENCH_LIMIT:-220}" && timeout "${BENCH_LIMIT:-220}" $PY bench/run_bench.py --model "$LARGE" --pooling cls \
    "${GPU[@]}" ${BENCH_ALSO:+--also "$BENCH_ALSO"} --also-lever "${BENCH_LEVER:-trace}" 2>&1 | tee "$OUT_DIR/bench.txt"
runs encoder "${ENCODER_LIMIT:-90}" && timeout "${ENCODER_LIMIT:-90}" $PY bench/encoder_rate.py --model "$LARGE" \
    "${GPU[@]}" 2>&1 | tee "$OUT_DIR/encoder.txt"
runs split "${SPLIT_LIMIT:-60}" && timeout "${SPLIT_LIMIT:-60}" $PY bench/encoder_split.py --model "$LARGE" \
    "${GPU[@]}" 2>&1 | tee "$OUT_DIR/split.txt"
runs traced "${TRACED_LIMIT:-90}" && timeout "${TRACED_LIMIT:-90}" $PY bench/traced_rate.py --model "$LARGE" \
    "${GPU[@]}" --texts 2560 2>&1 | tee "$OUT_DIR/traced.txt"
runs full $((FULL_LIMIT + 40)) && timeout $((FULL_LIMIT + 40)) $PY bench/bench_full.py --shape base \
    --tokenizer "$TOKENIZER_DIR" --scale "$FULL_SCALE" --time-limit "$FULL_LIMIT" --lever "${FULL_LEVER:-none}" \
    "${GPU[@]}" 2>&1 | tee "$OUT_DIR/full.txt"
runs tokens "${TOKENS_LIMIT:-90}" && timeout "${TOKENS_LIMIT:-90}" $PY bench/tokenize_rate.py --tokenizer "$TOKENIZER_DIR" \
    --scale "${TOKENS_SCALE:-0.5}" 2>&1 | tee "$OUT_DIR/tokens.txt"
runs forward "${RATE_LIMIT:-45}" && timeout "${RATE_LIMIT:-45}" $PY bench/forward_rate.py --model "$LARGE" \
    --device cuda --precision fp16 2>&1 | tee "$OUT_DIR/forward.txt"
runs startup "${STARTUP_LIMIT:-60}" && timeout "${STARTUP_LIMIT:-60}" $PY bench/startup.py --model "$LARGE" \
    --data-dir "$(dirname "$LARGE")/mirror" --device cuda --precision fp16 --fresh-memo 2>&1 | tee "$OUT_DIR/startup.txt"
runs workers "${WORKERS_LIMIT:-90}" && timeout "${WORKERS_LIMIT:-90}" $PY bench/workers_rate.py --model "$LARGE" \
    --devices cuda:0 --texts 20000 "${GPU[@]}" 2>&1 | tee "$OUT_DIR/workers.txt"
runs large $((LARGE_LIMIT + 40)) && timeout $((LARGE_LIMIT + 40)) $PY bench/bench_full.py --shape large \
    --tokenizer "$TOKENIZER_DIR" --scale "$LARGE_SCALE" --time-limit "$LARGE_LIMIT" "${GPU[@]}" 2>&1 | tee "$OUT_DIR/large.txt"
