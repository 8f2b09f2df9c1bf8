#!/usr/bin/env bash
# `opsweave serve` under wrk: GET /api/tasks?horizon=today&limit=3 on loopback, then the server's
# memory with a smaller store.
#
#   benches/http/run.sh [ROWS] [SECONDS] [SMALL_ROWS]   (defaults: 1,000,000, 30, 100,000)
#
# 1. Builds `opsweave` and the `embedded` harness (release) and, once, a SQLite database of ROWS
#    synthetic tasks: the CSV of benches/src/bin/embedded.rs ingested with `opsweave ingest` and
#    benches/bindings/tasks-mapping.toml. Databases and the admin key each printed on first start
#    are cached under $OPSWEAVE_HTTP_BENCH_DIR (default ~/.cache/opsweave-http-bench).
# 2. Starts `opsweave serve` on 127.0.0.1 (JSON logs at the default `info` to a file, a rate limit
#    high enough not to refuse the load, 2 in-process workers as by default), warms up 3 s, then
#    runs wrk for SECONDS with --latency and one `Authorization: Bearer` key.
# 3. Prints requests/s, p50 / p99 / max, non-2xx responses, the CPU time per request of the server
#    (utime + stime from /proc) and of wrk (robust on a shared machine, unlike requests/s), what
#    two idle cores could serve at those costs, RSS (VmRSS) and peak RSS (VmHWM) after start and
#    after the run, the load average and the CPU model.
# 4. Repeats with SMALL_ROWS records: RSS after start, after the same wrk run, and after ingesting
#    the SMALL_ROWS CSV again through the server (POST /api/ingest, an in-process job) into a
#    fresh database. SMALL_ROWS=0 skips step 4.
#
# Pinning: with PIN=1 (default when the machine has 2 or more CPUs) the server runs on CPU 1 and
# wrk on CPU 0 (`taskset`), so the two do not take turns on one core: the server gets one core.
# PIN=0 leaves both to the scheduler. FOCUS_CACHE_SECS=N sets `server.focus_cache_secs`. wrk: WRK_THREADS (default 1), WRK_CONNECTIONS (default 32).
# OPSWEAVE_BENCH_BIN=PATH runs that `opsweave` binary instead of building one (A/B comparisons;
# a binary older than the cached databases' migrations refuses them).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-1000000}"
seconds="${2:-30}"
small="${3:-100000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsweave-target}"
cache="${OPSWEAVE_HTTP_BENCH_DIR:-$HOME/.cache/opsweave-http-bench}"
threads="${WRK_THREADS:-1}"
connections="${WRK_CONNECTIONS:-32}"
if [ "$(nproc)" -ge 2 ]; then pin="${PIN:-1}"; else pin=0; fi
bin="${OPSWEAVE_BENCH_BIN:-$CARGO_TARGET_DIR/release/opsweave}"
mapping="$PWD/benches/bindings/tasks-mapping.toml"
work="$(mktemp -d "${TMPDIR:-/tmp}/opsweave-http-bench.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
say() { echo "http-bench: $*" >&2; }

command -v wrk >/dev/null || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing wrk with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2 || {
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
        }
    fi
    command -v wrk >/dev/null || { say "wrk not found (Debian: apt-get install wrk)"; exit 1; }
}

if [ -z "${OPSWEAVE_BENCH_BIN:-}" ]; then
    say "building opsweave and the embedded harness (release)"
    cargo build --quiet --release -p opsweave-cli -p opsweave-benches --bin opsweave --bin embedded
fi
mkdir -p "$cache"

# A high limit: the bench measures the limiter's cost, not its refusals.
cat >"$work/opsweave.toml" <<'TOML'
[server]
rate_limit_per_minute = 1000000000
TOML
# FOCUS_CACHE_SECS=0 measures every request computing its focus answer (the default reuses it
# while the org's tasks are unchanged).
if [ -n "${FOCUS_CACHE_SECS:-}" ]; then
    echo "focus_cache_secs = $FOCUS_CACHE_SECS" >>"$work/opsweave.toml"
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Command prefixes that pin (arrays, not functions: a function run with `&` is a subshell, and
# $! would then be the shell's pid rather than the server's).
server_cpu=()
wrk_cpu=()
if [ "$pin" = 1 ]; then
    server_cpu=(taskset -c 1)
    wrk_cpu=(taskset -c 0)
fi

# start_server DB_DIR LOG: starts `opsweave serve` on DB_DIR/opsweave.db, sets server_pid and url.
start_server() {
    local port
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    "${server_cpu[@]}" "$bin" --config "$work/opsweave.toml" --db "sqlite://$1/opsweave.db" serve \
        --addr "127.0.0.1:$port" 2>"$2" &
    server_pid=$!
    for _ in $(seq 1 600); do
        if curl -fsS "$url/healthz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || { cat "$2" >&2; say "server exited"; exit 1; }
        sleep 0.1
    done
    cat "$2" >&2
    say "server did not answer on $url"
    exit 1
}

stop_server() {
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# dataset N: makes (once) $cache/tasks-N/ with opsweave.db (N tasks) and key (an admin key).
dataset() {
    local n="$1" dir="$cache/tasks-$1"
    if [ -f "$dir/complete" ]; then
        say "reusing $dir"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ ! -f "$cache/tasks-$n.csv" ]; then
        say "writing $n synthetic rows to $cache/tasks-$n.csv"
        OPSWEAVE_BENCH_CSV="$cache/tasks-$n.csv.partial" OPSWEAVE_BENCH_CSV_ONLY=1 \
            "$CARGO_TARGET_DIR/release/embedded" "$n"
        mv "$cache/tasks-$n.csv.partial" "$cache/tasks-$n.csv"
    fi
    say "ingesting $n rows into $dir/opsweave.db"
    /usr/bin/time -f "ingest: %e s wall, %U s user, %S s sys, peak RSS %M KiB" \
        "$bin" --db "sqlite://$dir/opsweave.db" ingest "$cache/tasks-$n.csv" --mapping "$mapping" \
        --rejections "$dir/rejections.csv" >&2
    # The first start on a store without keys prints an admin key once, on stderr.
    start_server "$dir" "$work/first.log"
    sed -n 's/^ *\(ow_[A-Za-z0-9_-]*\) *$/\1/p' "$work/first.log" | head -n 1 >"$dir/key"
    stop_server
    [ -s "$dir/key" ] || { cat "$work/first.log" >&2; say "no admin key in the first start's log"; exit 1; }
    touch "$dir/complete"
}

proc_field() { # proc_field PID FIELD: a /proc/PID/status line's value in KiB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

cpu_ticks() { # utime + stime of a process, in clock ticks
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

memory() { # memory LABEL: one line of the server's RSS and peak RSS
    printf '%-28s RSS %6.1f MiB, peak %6.1f MiB\n' "$1" \
        "$(awk -v k="$(proc_field "$server_pid" VmRSS)" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="$(proc_field "$server_pid" VmHWM)" 'BEGIN { print k / 1024 }')"
}

# load_test KEY SECONDS: wrk against /api/tasks, with the server's CPU time per request.
load_test() {
    local key="$1" secs="$2" target="$url/api/tasks?horizon=today&limit=3"
    local status
    status="$(curl -sS -o "$work/one.json" -w '%{http_code}' -H "Authorization: Bearer $key" "$target")"
    [ "$status" = 200 ] || { cat "$work/one.json" >&2; say "GET /api/tasks answered $status"; exit 1; }
    python3 - "$work/one.json" <<'PY'
import json, sys
tasks = json.load(open(sys.argv[1]))["tasks"]
first = tasks[0].get("task", tasks[0]).get("title") if tasks else None
print(f"one answer: {len(tasks)} tasks; first: {first}")
PY
    "${wrk_cpu[@]}" wrk -t"$threads" -c"$connections" -d3s -H "Authorization: Bearer $key" "$target" >/dev/null
    local before after
    before="$(cpu_ticks "$server_pid")"
    "${wrk_cpu[@]}" /usr/bin/time -f "wrk CPU: %U s user, %S s sys" -o "$work/wrk-cpu.txt" \
        wrk -t"$threads" -c"$connections" -d"${secs}s" --latency \
        -H "Authorization: Bearer $key" "$target" | tee "$work/wrk.txt"
    after="$(cpu_ticks "$server_pid")"
    python3 - "$work/wrk.txt" "$before" "$after" "$(getconf CLK_TCK)" "$work/wrk-cpu.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
before, after, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wrk_cpu = re.search(r"([\d.]+) s user, ([\d.]+) s sys", open(sys.argv[5]).read())
total = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(label):
    m = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
cpu = (after - before) / hz
# The "Latency" thread-stats line: average, stdev, max.
latency = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", text)
top = float(latency.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[latency.group(2)]
print(f"result: {rps:,.0f} requests/s, p50 {ms(' 50%'):.3f} ms, p99 {ms(' 99%'):.3f} ms, "
      f"max {top:.3f} ms, non-2xx {bad.group(1) if bad else 0}, "
      f"socket errors: {errors.group(1) if errors else 'none'}")
server_us = cpu * 1e6 / max(total, 1)
wrk_us = (float(wrk_cpu.group(1)) + float(wrk_cpu.group(2))) * 1e6 / max(total, 1)
print(f"server CPU: {cpu:.2f} s for {total:,} requests = {server_us:.1f} µs per request; "
      f"wrk: {wrk_us:.1f} µs per request")
# What two otherwise idle cores could serve, server and wrk together, at these CPU costs.
print(f"two idle cores at these costs: ~{2e6 / (server_us + wrk_us):,.0f} requests/s")
PY
}

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); pinning: $([ "$pin" = 1 ] && echo 'server on CPU 1, wrk on CPU 0' || echo off)"

sets=("$rows")
[ "$small" = 0 ] || sets+=("$small")
for n in "${sets[@]}"; do
    dataset "$n"
    dir="$cache/tasks-$n"
    echo "== $n tasks: wrk -t$threads -c$connections -d${seconds}s GET /api/tasks?horizon=today&limit=3"
    start_server "$dir" "$work/serve.log"
    memory "after start"
    load_test "$(cat "$dir/key")" "$seconds"
    memory "after the run"
    echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    stop_server
done

# The small set once more, ingested through the server into a fresh store (the in-process job
# runs the writer with its page cache: the largest the server's memory gets).
[ "$small" = 0 ] && exit 0
echo "== $small tasks ingested through POST /api/ingest into a fresh store"
fresh="$work/fresh"
mkdir -p "$fresh"
start_server "$fresh" "$work/fresh.log"
key="$(sed -n 's/^ *\(ow_[A-Za-z0-9_-]*\) *$/\1/p' "$work/fresh.log" | head -n 1)"
memory "after start (empty store)"
job="$(curl -fsS -H "Authorization: Bearer $key" -F "file=@$cache/tasks-$small.csv" \
    -F "mapping=<$mapping" "$url/api/ingest")"
job_id="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$job")"
for _ in $(seq 1 1200); do
    state="$(curl -fsS -H "Authorization: Bearer $key" "$url/api/jobs/$job_id" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
    case "$state" in done | failed | cancelled) break ;; esac
    sleep 0.5
done
echo "ingest job: $state"
memory "after the ingest job"
load_test "$key" "$seconds"
memory "after the run"
stop_server
