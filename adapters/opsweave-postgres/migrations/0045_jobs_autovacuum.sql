-- A queue churns: every job's row dies twice (queued -> running -> done) while the history of
-- finished jobs stays. By default autovacuum waits for 20 % of the table to be dead, which takes
-- ever more jobs as the history grows (200,000 dead rows at 1,000,000 finished jobs), and until
-- then each claim and each count of open jobs steps over the dead index entries of the jobs
-- finished since. After 50,000 jobs ran over a history of 1,000,000 (docs/benchmarks.md,
-- nineteenth session): the claim's scan of `jobs_runnable` read 193 pages (0.44 ms) against 1
-- page (0.015 ms) once vacuumed, a count 0.78 against 0.21 ms; that vacuum took 0.09 s. So the
-- table is vacuumed after a fixed number of dead rows, whatever its size.
ALTER TABLE ops.jobs SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);
