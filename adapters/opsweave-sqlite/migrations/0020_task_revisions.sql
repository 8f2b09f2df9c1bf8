-- One counter per org, raised in the same transaction as every write to the org's tasks: a
-- process may reuse an answer computed from the tasks (focus) while the counter has not moved,
-- even when another process writes the same file.
CREATE TABLE task_revisions (
    org TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
) WITHOUT ROWID;
