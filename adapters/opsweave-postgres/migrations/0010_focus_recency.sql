-- Focus reads open tasks of a due day by importance, then most recent update first: within one
-- importance the scores then fall along the index, so a focus search stops after a few entries
-- instead of reading every task that shares the day's top importance.
DROP INDEX core.tasks_focus;
CREATE INDEX tasks_focus ON core.tasks (org, marked, due_day, importance DESC, updated_at DESC, id) WHERE open;
