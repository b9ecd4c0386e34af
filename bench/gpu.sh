#!/usr/bin/env bash
# The GPU benchmarks, on one GPU machine, in about 10 minutes; each writes its log to OUT_DIR.
#   1. workers.txt: the per-GPU worker path against the one-process path (bge-large-shaped, fp16);
#   2. bench.txt:   `make bench` on the GPU: plain mteb twice, cmteb cold and warm (bge-large-shaped);
#   3. full.txt:    `make bench-full` at FULL_SCALE with a bge-base-shaped model, stopped at FULL_LIMIT s.
# Models have random weights (no real BGE weights offline) and the tokenizer of TOKENIZER_DIR
# (m3e-small's bert-base-chinese vocabulary). Usage: bench/gpu.sh TOKENIZER_DIR OUT_DIR
set -uo pipefail
TOKENIZER_DIR=${1:?tokenizer folder}
OUT_DIR=${2:?output folder}
FULL_SCALE=${FULL_SCALE:-0.25}
FULL_LIMIT=${FULL_LIMIT:-240}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"
LARGE=$(mktemp -d)/bge-large-shaped
$PY -c "import sys; sys.path.insert(0, 'bench'); from figures import shaped_model; from pathlib import Path; \
shaped_model('large', Path('$TOKENIZER_DIR'), Path('$LARGE'))"
GPU=(--device cuda --precision fp16 --batch-size 256)
timeout ${WORKERS_LIMIT:-150} $PY bench/workers_rate.py --model "$LARGE" --devices cuda:0 --texts 20000 "${GPU[@]}" 2>&1 \
    | tee "$OUT_DIR/workers.txt"
timeout ${BENCH_LIMIT:-300} $PY bench/run_bench.py --model "$LARGE" --pooling cls "${GPU[@]}" 2>&1 | tee "$OUT_DIR/bench.txt"
$PY bench/bench_full.py --shape base --tokenizer "$TOKENIZER_DIR" --scale "$FULL_SCALE" \
    --time-limit "$FULL_LIMIT" "${GPU[@]}" 2>&1 | tee "$OUT_DIR/full.txt"
