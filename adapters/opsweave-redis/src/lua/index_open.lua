-- index_open: ARGV = prefix, org, page size. The org's index of open jobs (`open:ORG`) is kept by
-- enqueue and every finish; jobs enqueued by processes that predate it (before an upgrade, or
-- while older processes still run beside newer ones) reach it here: the jobs of the org's
-- history past its mark (`open-mark:ORG`, the highest job id looked at) that are still queued or
-- running are added, and the mark moves past them. Answers how many ids it looked at (a full
-- page: call again). Atomic, so a job finished meanwhile is read final here or leaves the index
-- by its finish.
local org = ARGV[2]
local open = P .. ':open:' .. org
local mark_key = P .. ':open-mark:' .. org
local mark = redis.call('GET', mark_key)
local lower = '-inf'
if mark then lower = '(' .. mark end
local ids = redis.call('ZRANGEBYSCORE', P .. ':org:' .. org, lower, '+inf', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local status = redis.call('HGET', jkey(id), 'status')
  if status == 'queued' or status == 'running' then
    redis.call('ZADD', open, id, id)
  end
end
if #ids > 0 then redis.call('SET', mark_key, ids[#ids]) end
return #ids
