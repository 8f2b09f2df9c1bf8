-- index_open: ARGV = prefix, org, then job ids. Adds those still queued or running to the org's
-- index of open jobs: builds the index for jobs enqueued before it existed. Atomic per call, so
-- a job finished meanwhile is either read final here or removed again by its finish.
local open = P .. ':open:' .. ARGV[2]
local added = 0
for i = 3, #ARGV do
  local status = redis.call('HGET', jkey(ARGV[i]), 'status')
  if status == 'queued' or status == 'running' then
    added = added + redis.call('ZADD', open, ARGV[i], ARGV[i])
  end
end
return added
