#!/usr/bin/env bash
# What the jobs table's autovacuum setting (migration 0045) changes for a queue with a history:
# two databases on the test server, HISTORY finished jobs each (vacuumed), one with the
# migration's setting and one with PostgreSQL's defaults; then CHURN jobs run through queued ->
# running -> done in both, and each is looked at right away and again after WAIT seconds
# (autovacuum's naptime is 1 minute): dead rows, autovacuums, the claim's scan of
# `jobs_runnable`, and `count_open`'s query (three times: a scan marks the dead entries it passes).
#
#   eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"
#   benches/postgres/jobs-autovacuum.sh OPSWEAVE_BINARY [HISTORY] [CHURN] [WAIT]
set -euo pipefail
opsweave=${1:?an opsweave binary}
history=${2:-1000000}
churn=${3:-50000}
wait_s=${4:-80}
: "${OPSWEAVE_TEST_POSTGRES_URL:?start the test server: eval \"\$(adapters/opsweave-postgres/pg-test-server.sh start)\"}"
psql="$(cat "$OPSWEAVE_TEST_POSTGRES_DIR/pginstall")/bin/psql"
server=${OPSWEAVE_TEST_POSTGRES_URL%/*}
tag=$$
databases=("ow_avac_setting_$tag" "ow_avac_default_$tag")
trap 'for d in "${databases[@]}"; do "$psql" "$OPSWEAVE_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)"; done' EXIT

for d in "${databases[@]}"; do
    "$psql" "$OPSWEAVE_TEST_POSTGRES_URL" -qc "CREATE DATABASE $d"
    "$opsweave" --db "$server/$d" focus >/dev/null # opening it migrates it
    "$psql" "$server/$d" -q <<SQL
INSERT INTO ops.jobs (org, scope_key, kind, payload, status, max_attempts, backoff_ms, run_after,
                      created_at, updated_at, finished_at)
SELECT 'acme', 'acme', 'noop', '{}', 'done', 3, 1000, now(), now(), now(), now()
FROM generate_series(1, $history);
VACUUM ANALYZE ops.jobs;
SQL
done
"$psql" "$server/${databases[1]}" -qc \
    "ALTER TABLE ops.jobs RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)"

for d in "${databases[@]}"; do
    "$psql" "$server/$d" -q <<SQL
INSERT INTO ops.jobs (org, scope_key, kind, payload, status, max_attempts, backoff_ms, run_after,
                      created_at, updated_at)
SELECT 'acme', 'acme', 'noop', '{}', 'queued', 3, 1000, now(), now(), now()
FROM generate_series(1, $churn);
UPDATE ops.jobs SET status = 'running', lease_owner = 'w',
    lease_expires_at = now() + interval '1 hour' WHERE status = 'queued';
UPDATE ops.jobs SET status = 'done', lease_owner = NULL, lease_expires_at = NULL,
    finished_at = now() WHERE status = 'running';
SQL
done

look() {
    for d in "${databases[@]}"; do
        echo "== $d, $1"
        "$psql" "$server/$d" -At <<'SQL' | grep -E '^(dead|Time|Execution)|Buffers: shared|Heap Fetches' | sed -n '1,12p'
SELECT 'dead rows ' || n_dead_tup || ', autovacuums ' || autovacuum_count
FROM pg_stat_user_tables WHERE relid = 'ops.jobs'::regclass;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF)
SELECT id FROM ops.jobs WHERE status = 'queued' AND run_after <= now()
ORDER BY run_after, id LIMIT 32;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
\timing on
SELECT status, count(*) FROM ops.jobs WHERE org = 'acme' AND status IN ('queued', 'running') GROUP BY status;
SELECT status, count(*) FROM ops.jobs WHERE org = 'acme' AND status IN ('queued', 'running') GROUP BY status;
SELECT status, count(*) FROM ops.jobs WHERE org = 'acme' AND status IN ('queued', 'running') GROUP BY status;
SQL
    done
}
look "right after the churn"
sleep "$wait_s"
look "${wait_s} s later"
