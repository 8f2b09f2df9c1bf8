-- claim: ARGV = prefix, lease_ms, error for exhausted leases, N, N worker names, kinds... (none:
-- any). Leases up to N jobs, the i-th to the i-th worker, and answers the names of a job's
-- values, then one array of the job's values per claimed job (see `take`), in that order.
local now = now_ms()
local lease_until = string.format('%.0f', now + tonumber(ARGV[2]))
local now_s = string.format('%.0f', now)
local n = tonumber(ARGV[4])
local workers = {}
for i = 1, n do workers[i] = ARGV[4 + i] end
local claimed = {}
local scan = math.max(100, n)

-- 1. Jobs whose backoff (or run_after) has passed join their kind's stream.
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, scan)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. ':delayed', id)
  local h = redis.call('HMGET', jkey(id), 'status', 'kind')
  if h[1] == 'queued' then
    redis.call('HSET', jkey(id), 'entry', redis.call('XADD', skey(h[2]), '*', 'job', id))
  end
end

local kinds = {}
local wanted = {}
if #ARGV > 4 + n then
  for i = 5 + n, #ARGV do
    if redis.call('SISMEMBER', P .. ':kinds', ARGV[i]) == 1 then table.insert(kinds, ARGV[i]) end
    wanted[ARGV[i]] = true
  end
else
  kinds = redis.call('SMEMBERS', P .. ':kinds')
  for _, k in ipairs(kinds) do wanted[k] = true end
end

-- Leases job `id` (its stream entry `entry`) to the next worker when its status is `expected`,
-- reading its hash once for the check, the update event and the answer; false when it was not.
-- A job's answer is the values of ANSWER's fields in that order, false where the hash has none:
-- half the strings of its fields and values, which the server writes and the client reads for
-- every job claimed. The claim's reply starts with ANSWER itself, so the client takes the names
-- from there. The first READ fields come from the hash, the rest are what the claim sets; the
-- hash is not asked for `finished_ms`, which no queued or running job has (a field a hash lacks
-- costs a look at every field it has).
local ANSWER = {'kind', 'payload', 'scope', 'status', 'attempts', 'max_attempts', 'backoff_ms',
  'progress', 'message', 'idem', 'run_after_ms', 'error', 'created_ms', 'id', 'owner', 'lease_ms',
  'updated_ms'}
local READ = 13
local leased = {}
local function take(id, entry, expected)
  local key = jkey(id)
  local v = redis.call('HMGET', key, unpack(ANSWER, 1, READ))
  if v[4] ~= expected then return false end
  local owner, attempts = workers[#claimed + 1], string.format('%.0f', tonumber(v[5]) + 1)
  redis.call('HSET', key, 'status', 'running', 'owner', owner, 'lease_ms', lease_until,
    'updated_ms', now_s, 'entry', entry, 'attempts', attempts)
  v[4], v[5], v[14], v[15], v[16], v[17] = 'running', attempts, id, owner, lease_until, now_s
  note_update(id, 'running', v[8], v[9], v[1], attempts, v[3])
  claimed[#claimed + 1] = v
  leased[#leased + 1] = lease_until
  leased[#leased + 1] = id
  return true
end

-- 2. Leases that ran out (the worker stopped heartbeating): the job returns to the queue, or
-- fails when that was its last allowed attempt.
local expired = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', '(' .. now, 'LIMIT', 0, scan)
for _, id in ipairs(expired) do
  local h = redis.call('HMGET', jkey(id), 'status', 'kind', 'attempts', 'max_attempts', 'entry')
  if h[1] ~= 'running' then
    redis.call('ZREM', P .. ':leases', id)
  elseif tonumber(h[3]) >= tonumber(h[4]) then
    finish(id, 'failed', now)
    redis.call('HSET', jkey(id), 'error', ARGV[3])
    note(id)
  elseif #claimed < n and wanted[h[2]] and h[5] then
    -- The entry moves to the new worker's pending list in the consumer group.
    redis.call('XCLAIM', skey(h[2]), GROUP, workers[#claimed + 1], 0, h[5], 'JUSTID')
    take(id, h[5], 'running')
  end
end

-- 3. The oldest undelivered entries among the wanted kinds' streams.
-- How many of the `want` oldest undelivered entries each kind's stream holds. With one kind
-- there is nothing to compare: its stream is read for all of them.
local function plan(want)
  if #kinds == 1 then return {[kinds[1]] = want} end
  local heads = {}
  for _, k in ipairs(kinds) do
    for _, e in ipairs(redis.call('XRANGE', skey(k), '(' .. last_delivered(k), '+', 'COUNT', want)) do
      heads[#heads + 1] = {e[1], k}
    end
  end
  table.sort(heads, function(a, b) return older(a[1], b[1]) end)
  local counts = {}
  for i = 1, math.min(want, #heads) do counts[heads[i][2]] = (counts[heads[i][2]] or 0) + 1 end
  return counts
end

-- Reads the planned entries, one XREADGROUP per kind (a batch's entries are pending under the
-- name of the first worker it serves until a heartbeat moves each to its holder), and leases
-- their jobs oldest entry first; an entry whose job changed meanwhile is acknowledged away. The
-- rounds are bounded, whatever the streams hold.
for _ = 1, 100 do
  if #claimed >= n then break end
  local read = {}
  for kind, count in pairs(plan(n - #claimed)) do
    local got = redis.call('XREADGROUP', 'GROUP', GROUP, workers[#claimed + 1], 'COUNT', count,
      'STREAMS', skey(kind), '>')
    if got and got[1] then
      for _, e in ipairs(got[1][2]) do read[#read + 1] = {e[1], kind, e[2][2]} end
    end
  end
  if #read == 0 then break end
  if #kinds > 1 then table.sort(read, function(a, b) return older(a[1], b[1]) end) end
  for _, r in ipairs(read) do
    if not take(r[3], r[1], 'queued') then drop_entry(r[2], r[1]) end
  end
end
if #leased > 0 then redis.call('ZADD', P .. ':leases', unpack(leased)) end
publish_noted()
table.insert(claimed, 1, ANSWER)
return claimed
