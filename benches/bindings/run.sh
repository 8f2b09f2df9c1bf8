#!/usr/bin/env bash
# Python and Node bindings against Rust on the same work, plus the pandas + sqlite3 FTS5 reference.
#
#   benches/bindings/run.sh [ROWS] [FOCUS_CALLS]      (defaults: 1,000,000 rows, 10,000 calls)
#
# One CSV of ROWS synthetic tasks (written once by the Rust `embedded` harness) is ingested into a
# fresh SQLite database by each of: Rust (`embedded`), Python (`bench_python.py`, release wheel),
# Node (`bench_node.mjs`, release addon); each then times FOCUS_CALLS `focus` calls at the same
# instants. pandas + sqlite3 (`bench_pandas.py`) loads the same CSV with an FTS5 index; it and the
# Python package then run the same 500 full-text queries. One process at a time; wall and CPU
# seconds are both printed because the machine may be shared. Needs python3, node, npm, cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-1000000}"
calls="${2:-10000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsweave-target}"
venv="${OPSWEAVE_BENCH_VENV:-$HOME/.cache/opsweave-bindings-bench-venv}"
work="$(mktemp -d "${TMPDIR:-/tmp}/opsweave-bindings-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mapping="$PWD/benches/bindings/tasks-mapping.toml"

echo "== build: Rust harness, Python wheel and Node addon, all release" >&2
cargo build --quiet --release -p opsweave-benches --bin embedded
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.9,<2' 'pandas>=2'
host="$(rustc -vV | sed -n 's/^host: //p')"
"$venv/bin/maturin" build --quiet --release --manifest-path bindings/python/Cargo.toml \
    --target "$host" --out "$work/wheels"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$work"/wheels/opsweave-*.whl
(
    cd bindings/node
    npm install --no-audit --no-fund --loglevel=error >&2
    npx napi build --platform --release --js index.js --dts index.d.ts >&2
)

python3 - "$work/queries.txt" <<'PY'
import itertools, sys
words = ["migrate", "database", "customer", "renewal", "invoice", "deploy", "security", "review",
         "contract", "pipeline", "onboarding", "latency", "backup", "report", "forecast", "upgrade",
         "cluster", "billing", "audit", "vendor", "search", "index", "support", "launch"]
pairs = list(itertools.permutations(words, 2))
with open(sys.argv[1], "w") as out:
    for a, b in pairs[:500]:
        out.write(f"{a} {b}\n")
PY

csv="$work/tasks.csv"
echo "== Rust ($rows rows, $calls focus calls)" >&2
OPSWEAVE_BENCH_CSV="$csv" "$CARGO_TARGET_DIR/release/embedded" "$rows" "$calls" | tee "$work/rust.txt" >&2
echo "== Python" >&2
"$venv/bin/python" benches/bindings/bench_python.py "$csv" "$mapping" "$work/py.db" "$calls" "$work/queries.txt" | tee "$work/python.json" >&2
rm -f "$work"/py.db*
echo "== Node" >&2
node benches/bindings/bench_node.mjs "$csv" "$mapping" "$work/node.db" "$calls" | tee "$work/node.json" >&2
rm -f "$work"/node.db*
echo "== pandas + sqlite3 FTS5" >&2
"$venv/bin/python" benches/bindings/bench_pandas.py "$csv" "$work/pandas.db" "$work/queries.txt" | tee "$work/pandas.json" >&2

python3 - "$work" "$rows" "$calls" <<'PY'
import json, re, sys
work, rows, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rust_text = open(f"{work}/rust.txt").read()
def grab(pattern):
    m = re.search(pattern, rust_text)
    return float(m.group(1)) if m else float("nan")
rust = {
    "lang": "rust",
    "ingest_wall_s": grab(r"ingest: \d+ rows in ([\d.]+)s"),
    "ingest_cpu_s": grab(r"cpu: process ([\d.]+)s"),
    "focus_p50_ms": grab(r"p50 ([\d.]+) ms"),
    "focus_p99_ms": grab(r"p99 ([\d.]+) ms"),
    "focus_loop_wall_s": grab(r"focus loop: \d+ calls in ([\d.]+)s wall"),
    "focus_loop_cpu_s": grab(r"wall, ([\d.]+)s process CPU"),
}
py = json.load(open(f"{work}/python.json"))
node = json.load(open(f"{work}/node.json"))
pandas = json.load(open(f"{work}/pandas.json"))
print(f"| measure ({rows:,} rows, {calls:,} focus calls) | Rust | Python | Node |")
print("|---|---|---|---|")
def row(name, key, fmt="{:.2f}", ratio=True):
    cells = [fmt.format(rust[key])]
    for other in (py, node):
        cell = fmt.format(other[key])
        if ratio and rust[key] > 0:
            cell += f" ({other[key] / rust[key]:.2f}×)"
        cells.append(cell)
    print(f"| {name} | " + " | ".join(cells) + " |")
row("ingest wall s", "ingest_wall_s")
row("ingest CPU s", "ingest_cpu_s")
row("focus p50 ms", "focus_p50_ms", "{:.3f}")
row("focus p99 ms", "focus_p99_ms", "{:.3f}")
row("focus loop wall s", "focus_loop_wall_s")
row("focus loop CPU s", "focus_loop_cpu_s")
print()
print("| same CSV, ingest + 500 full-text queries | opsweave (Python) | pandas + sqlite3 FTS5 | ratio |")
print("|---|---|---|---|")
for name, a, b in [
    ("ingest wall s", py["ingest_wall_s"], pandas["ingest_wall_s"]),
    ("ingest CPU s", py["ingest_cpu_s"], pandas["ingest_cpu_s"]),
    ("search p50 ms", py["search_p50_ms"], pandas["search_p50_ms"]),
    ("search p99 ms", py["search_p99_ms"], pandas["search_p99_ms"]),
]:
    print(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f}× |")
PY
