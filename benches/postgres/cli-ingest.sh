#!/usr/bin/env bash
# `opsweave ingest` into PostgreSQL, the way a user runs it: N synthetic task rows (the rows of the
# `embedded` and `scale_out` benches, same mapping) into a fresh database on the test server, each
# binary given run ROUNDS times, the binaries alternating round by round.
#
#   eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"
#   benches/postgres/cli-ingest.sh ROWS ROUNDS BINARY [BINARY ...]
#
# Each run: a fresh database, migrated by ingesting the CSV's first row, a CHECKPOINT, then the
# timed ingest of all ROWS. Prints rows/s; per row the machine's CPU time over the run (client,
# server and anything else: /proc/stat), the server's (the postmaster, its exited children and
# the live ones: backends, autovacuum, checkpointer…) and the client's own (user + system,
# /usr/bin/time); and the client's peak RSS. OPSWEAVE_CONFIG passes through (e.g. a file with
# [ingest] settings).
set -euo pipefail
rows=${1:?rows}
rounds=${2:?rounds}
shift 2
[ $# -gt 0 ] || { echo "name at least one opsweave binary" >&2; exit 2; }
: "${OPSWEAVE_TEST_POSTGRES_URL:?start the test server: eval \"\$(adapters/opsweave-postgres/pg-test-server.sh start)\"}"
psql="$(cat "$OPSWEAVE_TEST_POSTGRES_DIR/pginstall")/bin/psql"
server=${OPSWEAVE_TEST_POSTGRES_URL%/*}
here=$(cd "$(dirname "$0")/../.." && pwd)
mapping="$here/benches/bindings/tasks-mapping.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$rows" "$work" <<'PY'
import sys
rows, work = int(sys.argv[1]), sys.argv[2]
words = ["migrate", "customer", "renewal", "invoice", "deploy", "security", "review"]
with open(f"{work}/tasks.csv", "w") as out:
    out.write("id,title,body,due,priority,status,updated\n")
    for i in range(rows):
        w = lambda k: words[(i // (k + 1) + k) % len(words)]
        due = "" if i % 10 == 0 else "2026-%02d-%02d" % (1 + i % 12, 1 + i % 28)
        out.write(f"T-{i},{w(0)} {w(1)} {w(2)} #{i},Details for task {i} and follow-up,{due},"
                  f"P{i % 4},open,2026-11-{1 + i % 22:02d}T09:00:00Z\n")
PY
head -2 "$work/tasks.csv" >"$work/first.csv"

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
postmaster=$(head -1 "$OPSWEAVE_TEST_POSTGRES_DIR/data/postmaster.pid")
# CPU ticks of the server: the postmaster's own and reaped children's, plus its live children's.
server_ticks() {
    local total children
    total=$(awk '{print $14+$15+$16+$17}' "/proc/$postmaster/stat")
    children=$(pgrep -P "$postmaster" || true)
    for pid in $children; do
        total=$((total + $(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
for round in $(seq "$rounds"); do
    for bin in "$@"; do
        "$psql" "$server/postgres" -Atqc "DROP DATABASE IF EXISTS opsweave_cli_bench" \
            -c "CREATE DATABASE opsweave_cli_bench" 2>/dev/null
        db="$server/opsweave_cli_bench"
        "$bin" ingest --db "$db" --mapping "$mapping" "$work/first.csv" >/dev/null
        "$psql" "$db" -Atqc "CHECKPOINT"
        sleep 1
        c1=$(busy); s1=$(server_ticks); t1=$(date +%s.%N)
        /usr/bin/time -f "%U %S %M" -o "$work/time" "$bin" ingest --db "$db" --mapping "$mapping" \
            "$work/tasks.csv" >/dev/null
        t2=$(date +%s.%N); c2=$(busy)
        sleep 0.5  # the backends exit after the client; their CPU moves to the postmaster's
        s2=$(server_ticks)
        read -r user sys rss <"$work/time"
        python3 -c "
w = $t2 - $t1; cpu = ($c2 - $c1) / 100; server = ($s2 - $s1) / 100; n = $rows
print(f'round $round  $bin: {n / w:,.0f} rows/s  ({w:.2f} s; CPU per row: machine {cpu / n * 1e6:.1f} µs, '
      f'server {server / n * 1e6:.1f} µs, client {($user + $sys) / n * 1e6:.1f} µs; client peak RSS {$rss / 1024:.0f} MiB)')"
    done
done
"$psql" "$server/postgres" -Atqc "DROP DATABASE IF EXISTS opsweave_cli_bench"
