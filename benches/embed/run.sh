#!/usr/bin/env bash
# Embedding throughput (issue 4): the ONNX adapter (adapters/opsweave-onnx) against Python
# onnxruntime + tokenizers on the same model (all-MiniLM-L6-v2 int8), the same texts, the same
# batches and the same thread count, each with length-sorted batching (the adapter's) and with
# batches in input order; then checks that both sides give the same vectors and rewrites the
# "Embedding throughput (issue 4)" section of docs/benchmarks.md.
#
#   benches/embed/run.sh
#
# Environment (all optional):
#   EMBED_DATA         entity-matching data the corpus is cut from [default: ../shared/data/er]
#   EMBED_TEXTS        texts in the corpus [default: 2000]
#   EMBED_THREADS      intra-op thread counts to run, space-separated [default: "1 2"]
#   EMBED_RUNS         timed runs per configuration, median reported [default: 3]
#   OPSWEAVE_EMBED_VENV  venv for Python onnxruntime [default: ~/.cache/opsweave-embed-venv]
#   EMBED_RESULTS      raw results [default: ~/.cache/opsweave-embed-results]
#   CARGO_TARGET_DIR   cargo's build folder [default: target]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/benches/embed"
DATA=${EMBED_DATA:-$ROOT/../shared/data/er}
TEXTS=${EMBED_TEXTS:-2000}
THREADS=${EMBED_THREADS:-1 2}
RUNS=${EMBED_RUNS:-3}
VENV=${OPSWEAVE_EMBED_VENV:-$HOME/.cache/opsweave-embed-venv}
RESULTS=${EMBED_RESULTS:-$HOME/.cache/opsweave-embed-results}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ORT_VERSION=${OPSWEAVE_ORT_VERSION:-1.31.1}

for f in abt-buy/left.csv abt-buy/right.csv dblp-acm/left.csv; do
    [ -f "$DATA/$f" ] || { echo "run.sh: missing $DATA/$f" >&2; exit 1; }
done

echo "== test model and ONNX Runtime $ORT_VERSION (fetch-test-model.sh)"
eval "$(OPSWEAVE_ORT_VERSION=$ORT_VERSION "$ROOT/adapters/opsweave-onnx/fetch-test-model.sh")"
export ORT_DYLIB_PATH

echo "== Python venv: $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# The same ONNX Runtime release as the library the adapter loads, and the tokenizers release the
# adapter is built with.
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "onnxruntime==$ORT_VERSION" 'tokenizers==0.22.2' 'numpy<3'
PY="$VENV/bin/python"

echo "== building the Rust harness (release)"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet -p opsweave-benches \
    --bin embed_throughput)
BIN="$TARGET/release/embed_throughput"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
python3 "$HERE/corpus.py" "$DATA" "$RESULTS/all.jsonl"
head -n "$TEXTS" "$RESULTS/all.jsonl" > "$RESULTS/texts.jsonl"
python3 - "$RESULTS/machine.json" <<'PY'
import json, os, platform, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
json.dump({"cpus": os.cpu_count(), "cpu": cpu, "load": round(os.getloadavg()[0], 1),
           "python": platform.python_version()}, open(sys.argv[1], "w"))
PY

# Rust then Python for each configuration, so that load changes hit both alike. Tokenization
# (rayon in both) gets the same thread count as ONNX Runtime.
for threads in $THREADS; do
    for order in sorted fixed; do
        echo "== $threads thread(s), $order batches: opsweave-onnx"
        RAYON_NUM_THREADS=$threads "$BIN" "$OPSWEAVE_TEST_MODEL_DIR" "$RESULTS/texts.jsonl" \
            "$threads" "$order" "$RUNS" "$RESULTS/vectors-$order-$threads.json" \
            > "$RESULTS/rust-$order-$threads.json"
        echo "== $threads thread(s), $order batches: Python onnxruntime"
        RAYON_NUM_THREADS=$threads "$PY" "$HERE/python_embed.py" "$OPSWEAVE_TEST_MODEL_DIR" \
            "$RESULTS/texts.jsonl" "$threads" "$order" "$RUNS" \
            "$RESULTS/vectors-$order-$threads.json" > "$RESULTS/python-$order-$threads.json"
    done
done
python3 - "$RESULTS/machine.json" <<'PY'
import json, os, sys
m = json.load(open(sys.argv[1]))
m["load_after"] = round(os.getloadavg()[0], 1)
json.dump(m, open(sys.argv[1], "w"))
PY

COMMAND="EMBED_TEXTS=$TEXTS EMBED_THREADS=\"$THREADS\" EMBED_RUNS=$RUNS benches/embed/run.sh"
python3 "$HERE/report.py" "$RESULTS" "$ROOT/docs/benchmarks.md" "$COMMAND"
