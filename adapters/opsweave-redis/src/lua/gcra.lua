-- GCRA (the same arithmetic as opsweave_core::rate::gcra), on the server's clock in µs.
-- KEYS = the limit's key (holds the theoretical arrival time); ARGV = interval µs, burst, cost
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local tat = math.max(stored, now)
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if allow_at <= now then
  -- The key lives until the burst is full again.
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  return {1, 0}
end
return {0, allow_at - now}
