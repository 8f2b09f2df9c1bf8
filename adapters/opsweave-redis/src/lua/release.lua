-- release: ARGV = prefix, id, worker. Hands a held job back at once without using an attempt.
local id, worker = ARGV[2], ARGV[3]
local bad = not_held(id, worker)
if bad then return bad end
local now = now_ms()
local key = jkey(id)
local k = redis.call('HMGET', key, 'kind', 'entry', 'attempts')
drop_entry(k[1], k[2])
redis.call('ZREM', P .. ':leases', id)
redis.call('HSET', key, 'status', 'queued', 'run_after_ms', now, 'updated_ms', now,
  'attempts', math.max(tonumber(k[3]) - 1, 0))
redis.call('HDEL', key, 'owner', 'lease_ms')
redis.call('HSET', key, 'entry', redis.call('XADD', skey(k[1]), '*', 'job', id))
return publish_reply(id)
