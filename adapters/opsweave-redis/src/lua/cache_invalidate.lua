-- cache invalidate: KEYS = tag set; ARGV = tag key prefix, key-tags key prefix, value key prefix
-- Every entry filed under the tag goes, and leaves its other tags' sets, in one atomic step.
local removed = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  removed = removed + redis.call('DEL', key)
  local tags_key = ARGV[2] .. string.sub(key, #ARGV[3] + 1)
  for _, other in ipairs(redis.call('SMEMBERS', tags_key)) do
    redis.call('SREM', ARGV[1] .. other, key)
  end
  redis.call('DEL', tags_key)
end
redis.call('DEL', KEYS[1])
return removed
