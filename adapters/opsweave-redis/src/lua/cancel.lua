-- cancel: ARGV = prefix, id (the caller checked the scope; a job's scope never changes)
local id = ARGV[2]
local status = redis.call('HGET', jkey(id), 'status')
if not status then return {'notfound'} end
if status == 'cancelled' then return reply(id) end
if status == 'done' or status == 'failed' then return {'conflict', status, ''} end
finish(id, 'cancelled', now_ms())
return publish_reply(id)
