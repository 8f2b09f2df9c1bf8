-- complete: ARGV = prefix, id, worker
local id, worker = ARGV[2], ARGV[3]
local bad = not_held(id, worker)
if bad then return bad end
finish(id, 'done', now_ms())
redis.call('HSET', jkey(id), 'progress', '1')
return publish_reply(id)
