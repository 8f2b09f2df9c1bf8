-- enqueue: ARGV = prefix, idempotency redis key or '', org, kind, payload, scope json,
-- max_attempts, backoff_ms, run_after_ms or '', idempotency key or ''
local now = now_ms()
local idem = ARGV[2]
if idem ~= '' then
  local existing = redis.call('GET', idem)
  if existing then return reply(existing) end
end
-- Integers go into the hash as exact digits (`%.0f`): `tostring` prints a Lua number with `%.14g`,
-- which turns 15 digits and more into an exponent no reader parses.
local id = string.format('%.0f', redis.call('INCR', P .. ':next_id'))
local kind = ARGV[4]
local now_s = string.format('%.0f', now)
local run_after, run_after_s = now, now_s
if ARGV[9] ~= '' then run_after, run_after_s = tonumber(ARGV[9]), ARGV[9] end
-- The job's hash is written once, its stream entry included, and answered as written (no read
-- back: the fields are all here).
local fields = {'id', id, 'kind', kind, 'payload', ARGV[5], 'scope', ARGV[6], 'status', 'queued',
  'attempts', '0', 'max_attempts', ARGV[7], 'backoff_ms', ARGV[8], 'progress', '0',
  'run_after_ms', run_after_s, 'created_ms', now_s, 'updated_ms', now_s, 'org', ARGV[3]}
if idem ~= '' then
  fields[#fields + 1], fields[#fields + 2] = 'idem', ARGV[10]
  redis.call('SET', idem, id, 'NX')
end
if redis.call('SADD', P .. ':kinds', kind) == 1 then
  redis.call('XGROUP', 'CREATE', skey(kind), GROUP, '0', 'MKSTREAM')
end
if run_after > now then
  redis.call('ZADD', P .. ':delayed', run_after, id)
else
  fields[#fields + 1], fields[#fields + 2] = 'entry', redis.call('XADD', skey(kind), '*', 'job', id)
end
redis.call('HSET', jkey(id), unpack(fields))
local history = P .. ':org:' .. ARGV[3]
local mark_key = P .. ':open-mark:' .. ARGV[3]
local mark = redis.call('GET', mark_key)
-- The open index has looked at every earlier job of the org: it takes this one here, so its
-- mark moves past it (an older process's enqueue leaves the mark behind, for index_open).
if mark and mark == (redis.call('ZREVRANGE', history, 0, 0)[1] or '') then
  redis.call('SET', mark_key, id)
end
redis.call('ZADD', history, id, id)
redis.call('ZADD', P .. ':open:' .. ARGV[3], id, id)
table.insert(fields, 1, 'ok')
return fields
