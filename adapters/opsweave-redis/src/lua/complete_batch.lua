-- complete_batch: ARGV = prefix, then an id and a worker per job. Completes each job its worker
-- holds, in order; answers per job {'ok'}, {'notfound'} or {'conflict', status, owner}. What
-- `finish` does one job at a time is done here with one call per stream and per set, and the
-- acknowledged entries leave their stream with a trim instead of one deletion each.
local now = string.format('%.0f', now_ms())
local out = {}
local entries = {}
local done = {}
local opened = {}
for i = 2, #ARGV, 2 do
  local id, worker = ARGV[i], ARGV[i + 1]
  local key = jkey(id)
  local h = redis.call('HMGET', key, 'status', 'owner', 'kind', 'entry', 'message', 'attempts', 'scope',
    'org')
  if not h[1] then
    out[#out + 1] = {'notfound'}
  elseif h[1] ~= 'running' or h[2] ~= worker then
    out[#out + 1] = {'conflict', h[1], h[2] or ''}
  else
    if h[4] then
      entries[h[3]] = entries[h[3]] or {}
      table.insert(entries[h[3]], h[4])
    end
    done[#done + 1] = id
    local open = open_key(h[8], h[7])
    opened[open] = opened[open] or {}
    table.insert(opened[open], id)
    redis.call('HSET', key, 'status', 'done', 'progress', '1', 'updated_ms', now, 'finished_ms', now)
    redis.call('HDEL', key, 'owner', 'lease_ms', 'entry')
    note_update(id, 'done', '1', h[5], h[3], h[6], h[7])
    out[#out + 1] = {'ok'}
  end
end
for kind, ids in pairs(entries) do
  redis.call('XACK', skey(kind), GROUP, unpack(ids))
  trim(kind)
end
if #done > 0 then redis.call('ZREM', P .. ':leases', unpack(done)) end
for open, ids in pairs(opened) do redis.call('ZREM', open, unpack(ids)) end
publish_noted()
return out
