-- fail: ARGV = prefix, id, worker, error, longest backoff in ms, retry (1) or fail for good (0)
local id, worker = ARGV[2], ARGV[3]
local bad = not_held(id, worker)
if bad then return bad end
local now = now_ms()
local key = jkey(id)
local h = redis.call('HMGET', key, 'attempts', 'max_attempts', 'backoff_ms')
local attempts = tonumber(h[1])
if ARGV[6] == '0' or attempts >= tonumber(h[2]) then
  finish(id, 'failed', now)
else
  local k = redis.call('HMGET', key, 'kind', 'entry')
  drop_entry(k[1], k[2])
  redis.call('ZREM', P .. ':leases', id)
  -- The same doubling as opsweave_core::jobs::retry_delay.
  local doublings = math.min(math.max(attempts - 1, 0), 30)
  local delay = math.floor(math.min(tonumber(h[3]) * (2 ^ doublings), tonumber(ARGV[5])))
  redis.call('HSET', key, 'status', 'queued', 'run_after_ms', now + delay, 'updated_ms', now)
  redis.call('HDEL', key, 'owner', 'lease_ms', 'entry')
  redis.call('ZADD', P .. ':delayed', now + delay, id)
end
redis.call('HSET', key, 'error', ARGV[4])
return publish_reply(id)
