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
