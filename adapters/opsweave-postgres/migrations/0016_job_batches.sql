-- The job queue under load (see src/jobs.rs).
--
-- The index of leases holds the rows that have one (exactly the running jobs) instead of the rows
-- whose status is 'running': a statement that names a job by id and also checks it is running
-- could then use it (the planner, its statistics showing few running jobs, preferred it to the
-- primary key) and read every entry a recent update left behind until vacuum removes them, the
-- more the busier the queue. The claim's scan, `lease_expires_at < now()`, still uses it.
DROP INDEX ops.jobs_leased;
CREATE INDEX jobs_leased ON ops.jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

-- Leases up to cardinality(workers) jobs in one statement, the i-th to workers[i]: jobs whose
-- lease expired first (oldest lease first), then the oldest runnable queued jobs; a job whose
-- lease expired on its last allowed attempt is failed instead, and takes no worker. `SKIP
-- LOCKED` passes over rows other claimers hold, so concurrent claimers never wait on each other
-- or take the same job. `kinds` empty: any kind. Answers each claimed job with its worker's
-- 1-based position.
--
-- A function only for its plan: as a prepared statement PostgreSQL planned it again on every
-- call (the batch size is a parameter, so its generic plan looked costly), and planning cost
-- more server CPU than running it. Here the generic plan, which uses the same indexes, is kept.
CREATE FUNCTION ops.claim_jobs(workers text[], lease_ms bigint, kinds text[])
RETURNS TABLE (claimed_slot bigint, job ops.jobs)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH spent AS (
        SELECT id FROM ops.jobs
        WHERE status = 'running' AND lease_expires_at < now() AND attempts >= max_attempts
          AND (cardinality(kinds) = 0 OR kind = ANY(kinds))
        ORDER BY lease_expires_at, id LIMIT cardinality(workers) FOR UPDATE SKIP LOCKED),
    failed AS (
        UPDATE ops.jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL,
            error = 'lease expired on the last attempt (worker stopped heartbeating)',
            finished_at = now(), updated_at = now()
        WHERE id IN (SELECT id FROM spent)),
    expired AS (
        SELECT id, lease_expires_at FROM ops.jobs
        WHERE status = 'running' AND lease_expires_at < now() AND attempts < max_attempts
          AND (cardinality(kinds) = 0 OR kind = ANY(kinds))
        ORDER BY lease_expires_at, id LIMIT cardinality(workers) FOR UPDATE SKIP LOCKED),
    fresh AS (
        SELECT id, run_after FROM ops.jobs
        WHERE status = 'queued' AND run_after <= now()
          AND (cardinality(kinds) = 0 OR kind = ANY(kinds))
        ORDER BY run_after, id
        LIMIT cardinality(workers) - (SELECT count(*) FROM expired)
        FOR UPDATE SKIP LOCKED),
    picked AS (
        SELECT c.id, row_number() OVER (ORDER BY c.stale DESC, c.at, c.id) AS slot FROM (
            SELECT id, true AS stale, lease_expires_at AS at FROM expired
            UNION ALL SELECT id, false, run_after FROM fresh) AS c)
    UPDATE ops.jobs AS j SET status = 'running', attempts = j.attempts + 1, lease_owner = w.name,
        lease_expires_at = now() + lease_ms * interval '1 millisecond', updated_at = now()
    FROM picked AS p JOIN unnest(workers) WITH ORDINALITY AS w(name, slot) ON w.slot = p.slot
    WHERE j.id = p.id
    RETURNING p.slot, j;
END
$$;

-- Completes job ids[i] when owners[i] holds it, in order (a pair sees the pairs before it done);
-- answers the pairs it completed. One primary-key update per job: as one joined statement the
-- planner could pick an index by status and read far more than the batch.
CREATE FUNCTION ops.complete_jobs(ids bigint[], owners text[])
RETURNS TABLE (done_id bigint, done_owner text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        RETURN QUERY
        UPDATE ops.jobs SET status = 'done', progress = 1, lease_owner = NULL,
            lease_expires_at = NULL, updated_at = now(), finished_at = now()
        WHERE id = ids[i] AND status = 'running' AND lease_owner = owners[i]
        RETURNING id, owners[i];
    END LOOP;
END
$$;
