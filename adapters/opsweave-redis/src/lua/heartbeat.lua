-- heartbeat: ARGV = prefix, id, worker, lease_ms, progress given ('1'/'0'), fraction,
-- message given ('1'/'0'), message
local id, worker = ARGV[2], ARGV[3]
local bad = not_held(id, worker)
if bad then return bad end
local now = now_ms()
local lease_until = now + tonumber(ARGV[4])
local key = jkey(id)
redis.call('HSET', key, 'lease_ms', lease_until, 'updated_ms', now)
if ARGV[5] == '1' then
  redis.call('HSET', key, 'progress', ARGV[6])
  if ARGV[7] == '1' then redis.call('HSET', key, 'message', ARGV[8]) else redis.call('HDEL', key, 'message') end
end
redis.call('ZADD', P .. ':leases', lease_until, id)
-- Resets the entry's idle time, so XPENDING shows the time since the last heartbeat.
local h = redis.call('HMGET', key, 'kind', 'entry')
if h[2] then redis.call('XCLAIM', skey(h[1]), GROUP, worker, 0, h[2], 'JUSTID') end
return publish_reply(id)
