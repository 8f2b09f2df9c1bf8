#!/usr/bin/env bash
# Schema-based fuzzing of the HTTP API: starts the real `opsweave serve` on a free loopback port
# over a fresh SQLite file loaded with the sample data (examples/data, through `opsweave demo`),
# takes the admin key the first start prints, and runs Schemathesis (pinned, from PyPI, in a cached
# venv) against /openapi.json with that key. Every operation is fuzzed with valid and invalid
# input; any 5xx, undocumented status, wrong content type or body that breaks the documented
# schema fails the run.
#
#   scripts/fuzz-http.sh            # builds the binary if needed; 1 to 5 min on 2 cores, with load
#   FUZZ_EXAMPLES=200 scripts/fuzz-http.sh   # more cases per operation
#
# Reports (JUnit, and a pytest file reproducing each failure) land in $FUZZ_REPORT_DIR
# (default: $CARGO_TARGET_DIR/fuzz-http).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opsweave-target}"

SCHEMATHESIS_VERSION="4.32.5"
venv="${OPSWEAVE_FUZZ_VENV:-$HOME/.cache/opsweave-fuzz-venv}"
examples="${FUZZ_EXAMPLES:-60}"
seed="${FUZZ_SEED:-20261123}"
report_dir="${FUZZ_REPORT_DIR:-$CARGO_TARGET_DIR/fuzz-http}"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    echo "fuzz-http: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet -p opsweave-cli --bin opsweave
bin="$CARGO_TARGET_DIR/debug/opsweave"

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

db="sqlite://$work/fuzz.db"
# Generous limits, so the fuzzer meets the handlers rather than the rate limiter; one webhook
# source, so its signature checks are reached.
cat >"$work/opsweave.toml" <<'TOML'
[server]
rate_limit_per_minute = 1000000
request_timeout_secs = 20
max_body_bytes = 1048576
workers = 1

[server.webhooks.github]
secret = "fuzz-only-secret"
preset = "github-issue"
scope = { org = "default" }
TOML
export OPSWEAVE_CONFIG="$work/opsweave.toml"
unset OPSWEAVE_DB OPSWEAVE_ORG OPSWEAVE_CLIENT OPSWEAVE_PROJECT OPSWEAVE_REDIS OPSWEAVE_QUEUE \
    OPSWEAVE_EMBED_MODEL OPSWEAVE_DEV_MODE
# With the test model (adapters/opsweave-onnx/fetch-test-model.sh) the server embeds, so memory
# notes, dense recall and embed jobs are fuzzed too; the test command requires it.
if [ -n "${OPSWEAVE_TEST_MODEL_DIR:-}" ]; then
    export OPSWEAVE_EMBED_MODEL="onnx:$OPSWEAVE_TEST_MODEL_DIR"
elif [ -n "${OPSWEAVE_REQUIRE_SERVERS:-}" ]; then
    echo "fuzz-http: OPSWEAVE_TEST_MODEL_DIR is not set but OPSWEAVE_REQUIRE_SERVERS is" >&2
    exit 1
else
    echo "fuzz-http: no test model (OPSWEAVE_TEST_MODEL_DIR): embedding paths answer 400" >&2
fi

"$bin" --db "$db" demo --json >/dev/null

RUST_LOG="${RUST_LOG:-warn}" "$bin" --db "$db" serve --addr 127.0.0.1:0 2>"$work/serve.log" &
server_pid=$!
addr=""
for _ in $(seq 1 300); do
    addr=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$work/serve.log" | head -n 1)
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$addr" ] || { echo "fuzz-http: the server did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
key=$(grep -o 'ow_[0-9A-Za-z_-]*' "$work/serve.log" | head -n 1)
[ -n "$key" ] || { echo "fuzz-http: no admin key in the server's first-start output" >&2; exit 1; }
echo "fuzz-http: opsweave serve on $addr, $examples examples per operation, seed $seed" >&2

mkdir -p "$report_dir"
report_dir=$(cd "$report_dir" && pwd)
fuzz() { # fuzz NAME SCHEMATHESIS-ARGS...: one run; its reports under $report_dir/NAME
    local name="$1"
    shift
    # From the temporary folder: Schemathesis keeps a cache (.schemathesis/) where it runs.
    (cd "$work" && "$venv/bin/schemathesis" run "http://$addr/openapi.json" \
        --header "Authorization: Bearer $key" \
        --checks all \
        --exclude-checks positive_data_acceptance \
        --max-examples "$examples" \
        --seed "$seed" \
        --workers 2 \
        --request-timeout 30 \
        --generation-database none \
        --no-color \
        --report junit,pytest \
        --report-dir "$report_dir/$name" \
        "$@")
}

status=0
# Every check but positive_data_acceptance (every schema-valid request answered 2xx): the schema
# cannot say what the server rightly refuses with a 4xx, such as a preset *or* a mapping but not
# both, what a mapping must hold, a record id past i64, a blank query, or a memory note on a
# server without an embedding model.
# Revoking keys last and on its own: the fuzzer's ids reach the key it calls with, and a revoked
# key answers every later request with 401.
# A job's event stream lasts as long as the job, and the fuzzer's jobs of made-up kinds stay
# queued: streams are fuzzed once every job is cancelled (then each ends at once).
fuzz api --exclude-path '/api/keys/{id}/revoke' --exclude-path '/api/jobs/{id}/events' || status=$?
"$venv/bin/python" - "http://$addr" "$key" <<'PY' || status=$?
import json, sys, urllib.request
base, key = sys.argv[1], sys.argv[2]
def call(method, path):
    request = urllib.request.Request(base + path, method=method, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)
cancelled = 0
for status in ("queued", "running"):
    while jobs := call("GET", f"/api/jobs?status={status}&limit=1000")["jobs"]:
        for job in jobs:
            try:
                call("POST", f"/api/jobs/{job['id']}/cancel")
                cancelled += 1
            except urllib.error.HTTPError as e:
                if e.code != 409:  # finished meanwhile
                    raise
print(f"fuzz-http: cancelled {cancelled} jobs the fuzzer left queued", file=sys.stderr)
PY
fuzz events --include-path '/api/jobs/{id}/events' --phases examples,coverage,fuzzing || status=$?
fuzz revoke --include-path '/api/keys/{id}/revoke' --phases examples,coverage,fuzzing || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "fuzz-http: the server died during the run" >&2
    status=1
fi
if grep -q '"level":"ERROR"' "$work/serve.log"; then
    echo "fuzz-http: the server logged errors:" >&2
    grep '"level":"ERROR"' "$work/serve.log" | head -n 20 >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "fuzz-http: FAILED (reports in $report_dir)" >&2
fi
exit "$status"
