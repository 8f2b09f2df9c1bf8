-- A batch's rejections carry the batch's key and their place in it, unique together: when a
-- COMMIT's answer is lost and the whole batch is retried, the rejections already committed are
-- not written a second time. Older rows have no key (NULLs never conflict).
CREATE SEQUENCE raw.rejection_batches;
ALTER TABLE raw.rejections ADD COLUMN batch_key bigint, ADD COLUMN batch_ord bigint;
CREATE UNIQUE INDEX rejections_batch ON raw.rejections (batch_key, batch_ord);
