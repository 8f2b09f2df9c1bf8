#!/usr/bin/env bash
# Vector search side by side: opsweave's SQLite VectorIndex (usearch HNSW), hnswlib, faiss-cpu and
# (when OPSWEAVE_BENCH_POSTGRES_URL is set, or with --postgres to start a throwaway server)
# opsweave's PostgreSQL VectorIndex (pgvector HNSW), on one synthetic data set with exact ground
# truth. Prints one JSON line per engine and a markdown table (results in
# ~/.cache/opsweave-vec-results/N/).
#
#   benches/vectors/run.sh [N=100000] [--postgres]
#
# Every engine: M = 16, ef_construction = 128, ef_search = 64, k = 10; 1,000 queries one at a
# time, plain and filtered to a 1 % tenant. Each engine runs in its own process under
# /usr/bin/time -v, so "peak RSS" includes the data set it loaded (N × 384 floats).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
START_PG=0
[[ "${2:-}" == "--postgres" || "${1:-}" == "--postgres" ]] && START_PG=1
[[ "$N" == "--postgres" ]] && N=100000
VENV=${OPSWEAVE_VEC_VENV:-$HOME/.cache/opsweave-vec-venv}
DATA=$HOME/.cache/opsweave-vec-data/$N
OUT=$HOME/.cache/opsweave-vec-results/$N
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q numpy==2.4.6 hnswlib==0.8.0 faiss-cpu==1.15.1
fi
PY="$VENV/bin/python"
[[ -f "$DATA/meta.json" ]] || "$PY" benches/vectors/peers.py gen --n "$N" --out "$DATA"
cargo build --release -q -p opsweave-benches --bin vectors
BIN="$CARGO_TARGET_DIR/release/vectors"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc)" | tee "$OUT/machine.txt"
timed() { # NAME COMMAND...: JSON on stdout to $OUT/NAME.json, time -v to $OUT/NAME.time
    local name=$1; shift
    /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.json"
    cat "$OUT/$name.json"
}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Above 200,000 vectors the graph-walk tenant query and the rebuild from rows are skipped: each
# takes about as long as the build.
REBUILD=(); (( N > 200000 )) && REBUILD=(--no-rebuild)
timed opsweave-sqlite "$BIN" --data "$DATA" --db "sqlite://$WORK/vectors.db" "${REBUILD[@]}"
timed hnswlib "$PY" benches/vectors/peers.py hnswlib --data "$DATA"
timed faiss "$PY" benches/vectors/peers.py faiss --data "$DATA"

PG_URL=${OPSWEAVE_BENCH_POSTGRES_URL:-}
if [[ -z "$PG_URL" && $START_PG == 1 ]]; then
    eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"
    trap 'adapters/opsweave-postgres/pg-test-server.sh stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
    PG_URL=$OPSWEAVE_TEST_POSTGRES_URL
fi
if [[ -n "$PG_URL" ]]; then
    # The harness makes a fresh database on that server and drops it afterwards.
    timed opsweave-postgres "$BIN" --data "$DATA" --db "$PG_URL"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$PY" benches/vectors/report.py "$OUT"
