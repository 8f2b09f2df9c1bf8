#!/usr/bin/env bash
# Entity matching benchmark (issue 3): opsweave, Splink 5 and pyJedAI 0.3.6 on the same data,
# one after another, each under /usr/bin/time -v; writes the "Entity matching (issue 3)" section
# of docs/benchmarks.md.
#
#   benches/er/run.sh
#
# Environment (all optional):
#   ER_DATA           data folder [default: ../shared/data/er from the repository root]
#   OPSWEAVE_ER_VENV  Python venv for the peers [default: ~/.cache/opsweave-er-venv]
#   ER_RESULTS        where the raw results go [default: ~/.cache/opsweave-er-results]
#   CARGO_TARGET_DIR  cargo's build folder [default: target]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/benches/er"
DATA=${ER_DATA:-$ROOT/../shared/data/er}
VENV=${OPSWEAVE_ER_VENV:-$HOME/.cache/opsweave-er-venv}
RESULTS=${ER_RESULTS:-$HOME/.cache/opsweave-er-results}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in /usr/bin/time python3 cargo; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done
for d in abt-buy dblp-acm febrl4; do
    for f in left right gold; do
        [ -f "$DATA/$d/$f.csv" ] || { echo "run.sh: missing $DATA/$d/$f.csv" >&2; exit 1; }
    done
done
for f in records gold; do
    [ -f "$DATA/febrl3/$f.csv" ] || { echo "run.sh: missing $DATA/febrl3/$f.csv" >&2; exit 1; }
done

echo "== Python venv for the peers: $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'splink==5.*' 'pyjedai==0.3.6'
PY="$VENV/bin/python"

echo "== building opsweave (release)"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet -p opsweave-cli)
BIN="$TARGET/release/opsweave"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
"$PY" - "$RESULTS/versions.json" <<'EOF'
import importlib.metadata as m, json, os, platform, sys
json.dump({
    "splink": "Splink " + m.version("splink"),
    "pyjedai": "pyJedAI " + m.version("pyjedai"),
    "python": platform.python_version(),
    "cpus": os.cpu_count(),
    "load": round(os.getloadavg()[0], 1),
}, open(sys.argv[1], "w"))
EOF

# timed NAME COMMAND...: runs COMMAND under /usr/bin/time -v; stdout → NAME.json.
timed() {
    local name=$1
    shift
    echo "   $name"
    if ! /usr/bin/time -v -o "$RESULTS/$name.time" "$@" >"$RESULTS/$name.json" 2>"$RESULTS/$name.err"; then
        echo "run.sh: $name failed; see $RESULTS/$name.err" >&2
        tail -5 "$RESULTS/$name.err" >&2
        exit 1
    fi
}

# untimed NAME COMMAND...: the peers' --sweep run (candidates, oracle threshold); stdout → NAME.json.
untimed() {
    local name=$1
    shift
    echo "   $name (sweep, not timed)"
    "$@" >"$RESULTS/$name.json" 2>"$RESULTS/$name.err" || {
        echo "run.sh: $name failed; see $RESULTS/$name.err" >&2
        exit 1
    }
}

cd "$HERE"
export RAY_USAGE_STATS_ENABLED=0 TQDM_DISABLE=1
for d in abt-buy dblp-acm febrl4; do
    L="$DATA/$d/left.csv" R="$DATA/$d/right.csv" G="$DATA/$d/gold.csv"
    echo "== $d (link)"
    timed "$d.opsweave" "$BIN" eval link --left "$L" --right "$R" --gold "$G" --json
    timed "$d.splink" "$PY" splink_run.py link "$d" "$L" "$R" "$G"
    timed "$d.pyjedai" "$PY" pyjedai_run.py link "$L" "$R" "$G"
    untimed "$d.splink.sweep" "$PY" splink_run.py link "$d" "$L" "$R" "$G" --sweep
    untimed "$d.pyjedai.sweep" "$PY" pyjedai_run.py link "$L" "$R" "$G" --sweep
done
d=febrl3
REC="$DATA/$d/records.csv" G="$DATA/$d/gold.csv"
echo "== $d (dedupe)"
timed "$d.opsweave" "$BIN" eval dedupe --records "$REC" --gold "$G" --json
timed "$d.splink" "$PY" splink_run.py dedupe "$d" "$REC" "$G"
timed "$d.pyjedai" "$PY" pyjedai_run.py dedupe "$REC" "$G"
untimed "$d.splink.sweep" "$PY" splink_run.py dedupe "$d" "$REC" "$G" --sweep
untimed "$d.pyjedai.sweep" "$PY" pyjedai_run.py dedupe "$REC" "$G" --sweep

echo "== writing docs/benchmarks.md"
cd "$ROOT"
"$PY" "$HERE/report.py" "$RESULTS" "$ROOT/docs/benchmarks.md" "benches/er/run.sh"
