-- claim: ARGV = prefix, worker, lease_ms, error for exhausted leases, kinds... (none: any)
local now = now_ms()
local worker = ARGV[2]
local lease_until = now + tonumber(ARGV[3])

-- 1. Jobs whose backoff (or run_after) has passed join their kind's stream.
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. ':delayed', id)
  local h = redis.call('HMGET', jkey(id), 'status', 'kind')
  if h[1] == 'queued' then
    redis.call('HSET', jkey(id), 'entry', redis.call('XADD', skey(h[2]), '*', 'job', id))
  end
end

local kinds = {}
local wanted = {}
if #ARGV > 4 then
  for i = 5, #ARGV do
    if redis.call('SISMEMBER', P .. ':kinds', ARGV[i]) == 1 then table.insert(kinds, ARGV[i]) end
    wanted[ARGV[i]] = true
  end
else
  kinds = redis.call('SMEMBERS', P .. ':kinds')
  for _, k in ipairs(kinds) do wanted[k] = true end
end

local function take(id)
  local key = jkey(id)
  redis.call('HSET', key, 'status', 'running', 'owner', worker, 'lease_ms', lease_until,
    'updated_ms', now)
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('ZADD', P .. ':leases', lease_until, id)
  publish(id)
  return reply(id)
end

-- 2. Leases that ran out (the worker stopped heartbeating): the job returns to the queue, or
-- fails when that was its last allowed attempt.
local expired = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', '(' .. now, 'LIMIT', 0, 100)
local stale = nil
for _, id in ipairs(expired) do
  local h = redis.call('HMGET', jkey(id), 'status', 'kind', 'attempts', 'max_attempts', 'entry')
  if h[1] ~= 'running' then
    redis.call('ZREM', P .. ':leases', id)
  elseif tonumber(h[3]) >= tonumber(h[4]) then
    finish(id, 'failed', now)
    redis.call('HSET', jkey(id), 'error', ARGV[4])
    publish(id)
  elseif stale == nil and wanted[h[2]] then
    stale = {id, h[2], h[5]}
  end
end
if stale then
  -- The entry moves to this worker's pending list in the consumer group.
  redis.call('XCLAIM', skey(stale[2]), GROUP, worker, 0, stale[3], 'JUSTID')
  return take(stale[1])
end

-- 3. The oldest undelivered entry among the wanted kinds' streams.
local function last_delivered(kind)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', skey(kind))) do
    local name, last = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == GROUP then return last end
  end
  return '0-0'
end

local function older(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, bms = tonumber(ams), tonumber(bms)
  if ams ~= bms then return ams < bms end
  return tonumber(aseq) < tonumber(bseq)
end

for _ = 1, 100 do
  local best_kind, best_entry = nil, nil
  for _, k in ipairs(kinds) do
    local head = redis.call('XRANGE', skey(k), '(' .. last_delivered(k), '+', 'COUNT', 1)
    if #head > 0 and (best_entry == nil or older(head[1][1], best_entry)) then
      best_kind, best_entry = k, head[1][1]
    end
  end
  if not best_kind then return {'none'} end
  local got = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', 1, 'STREAMS',
    skey(best_kind), '>')
  if not got or not got[1] or #got[1][2] == 0 then return {'none'} end
  local entry = got[1][2][1]
  local id = entry[2][2]
  if redis.call('HGET', jkey(id), 'status') == 'queued' then
    redis.call('HSET', jkey(id), 'entry', entry[1])
    return take(id)
  end
  -- An entry whose job changed meanwhile: acknowledge it away.
  drop_entry(best_kind, entry[1])
end
return {'none'}
