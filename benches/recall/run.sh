#!/usr/bin/env bash
# Recall quality: BM25-only vs dense-only vs hybrid (RRF) on a BEIR-layout retrieval set, with the
# all-MiniLM-L6-v2 test model, through `opsweave eval recall` (release build).
#
#   benches/recall/run.sh DATA_DIR [OUT_DIR]
#
# DATA_DIR holds corpus.jsonl, queries.jsonl and qrels.tsv (e.g. made by cranfield_to_beir.py).
# Each mode runs under /usr/bin/time -v; OUT_DIR (default target/recall-bench) gets one JSON
# report and one time log per mode, and a markdown table on stdout. The load average at the start
# is printed, since the machine may be shared.
set -euo pipefail

DATA="${1:?usage: benches/recall/run.sh DATA_DIR [OUT_DIR]}"
OUT="${2:-target/recall-bench}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$OUT"

eval "$("$ROOT/adapters/opsweave-onnx/fetch-test-model.sh")"
export OPSWEAVE_EMBED_MODEL="onnx:$OPSWEAVE_TEST_MODEL_DIR"

BIN="${OPSWEAVE_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release -p opsweave-cli >&2
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/opsweave"
fi

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs" >&2
echo "| mode | recall@1 | recall@5 | recall@10 | recall@20 | nDCG@10 | MRR@20 | p50 ms | p99 ms | wall s | CPU s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for mode in bm25 dense hybrid; do
    /usr/bin/time -v -o "$OUT/$mode.time" "$BIN" eval recall \
        --corpus "$DATA/corpus.jsonl" --queries "$DATA/queries.jsonl" --qrels "$DATA/qrels.tsv" \
        --mode "$mode" --json >"$OUT/$mode.json"
    python3 - "$OUT/$mode.json" "$OUT/$mode.time" "$mode" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
timing = open(sys.argv[2]).read()
def field(name):
    return re.search(rf"{re.escape(name)}: (.*)", timing).group(1).strip()
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
wall_s = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
r = report
print(f"| {sys.argv[3]} | {r['recall@1']:.4f} | {r['recall@5']:.4f} | {r['recall@10']:.4f} | "
      f"{r['recall@20']:.4f} | {r['ndcg@10']:.4f} | {r['mrr']:.4f} | {r['p50_ms']:.2f} | "
      f"{r['p99_ms']:.2f} | {wall_s:.1f} | {cpu:.1f} |")
PY
done
