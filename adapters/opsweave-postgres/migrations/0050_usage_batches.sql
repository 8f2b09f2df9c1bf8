-- A usage batch's events carry the batch's key and their place in it, unique together: when a
-- COMMIT's answer is lost and the batch is retried, the events already committed are not
-- metered a second time. Older rows have no key (NULLs never conflict).
CREATE SEQUENCE ops.usage_batches;
ALTER TABLE ops.usage_events ADD COLUMN batch_key bigint, ADD COLUMN batch_ord bigint;
CREATE UNIQUE INDEX usage_events_batch ON ops.usage_events (batch_key, batch_ord);
