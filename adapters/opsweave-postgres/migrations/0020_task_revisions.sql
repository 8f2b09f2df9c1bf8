-- One counter per org, raised in the same transaction as every write to the org's tasks: every
-- process may reuse an answer computed from the tasks (focus) while the counter has not moved.
-- Writers raise it last, just before COMMIT, so its row lock is held only for the commit.
CREATE TABLE core.task_revisions (
    org text PRIMARY KEY,
    revision bigint NOT NULL
);
