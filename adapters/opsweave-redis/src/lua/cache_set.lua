-- cache set: KEYS = value key, key's tag set; ARGV = tag key prefix, ttl ms, value, tags...
-- The key leaves the tag sets it was filed under before, then joins its new ones.
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
for _, old in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('SREM', prefix .. old, KEYS[1])
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
for i = 4, #ARGV do
  local tag = prefix .. ARGV[i]
  redis.call('SADD', KEYS[2], ARGV[i])
  redis.call('SADD', tag, KEYS[1])
  -- A tag set lives as long as its longest-lived entry.
  local left = redis.call('PTTL', tag)
  if left < ttl then redis.call('PEXPIRE', tag, ttl) end
end
if #ARGV > 3 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
