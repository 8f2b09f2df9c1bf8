-- Shared by every job queue script (prepended at build time). ARGV[1] is the key prefix; every
-- key starts with it, so one Redis holds several queues apart and a cluster keeps them in one
-- slot (the prefix is a {hash tag}).
local P = ARGV[1]
local GROUP = 'workers'

-- The server's clock is the queue's one clock (leases, backoff, timestamps).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function jkey(id) return P .. ':job:' .. id end
local function skey(kind) return P .. ':stream:' .. kind end

-- A script's reply about one job is a flat array: 'ok' then the job hash, or an outcome word and
-- its details (a claim answers differently, see claim.lua).
local function reply(id)
  local r = redis.call('HGETALL', jkey(id))
  table.insert(r, 1, 'ok')
  return r
end

-- Job progress goes to every process subscribed to the queue's channel, in the same atomic step
-- as the change itself. The message is written by concatenation: the scope is JSON already (the
-- client wrote it), so it is not decoded and encoded again for every update; ids and attempts
-- are integers this queue wrote, put in as they are stored (no `tonumber` and `%.14g` back for
-- each). A missing message is nil or false (HMGET's missing field).
local encoded = {}
local function json_name(s)
  local e = encoded[s]
  if not e then
    e = cjson.encode(s)
    encoded[s] = e
  end
  return e
end

local function update_json(id, status, progress, message, kind, attempts, scope)
  local m = 'null'
  if message then m = cjson.encode(message) end
  return '{"id":' .. id .. ',"status":' .. json_name(status) .. ',"progress":' ..
    tostring(tonumber(progress) or 0) .. ',"message":' .. m .. ',"kind":' .. json_name(kind) ..
    ',"attempts":' .. attempts .. ',"scope":' .. scope .. '}'
end

-- The updates of a script that changes many jobs go out as one message, a JSON array, when the
-- script ends: one PUBLISH per batch instead of one per job. (A script that raises an error
-- midway publishes nothing, though Redis keeps the writes it made before the error.)
local updates = {}
local function note_update(id, status, progress, message, kind, attempts, scope)
  updates[#updates + 1] = update_json(id, status, progress, message, kind, attempts, scope)
end

local function note(id)
  local h = redis.call('HMGET', jkey(id), 'status', 'progress', 'message', 'kind', 'attempts', 'scope')
  note_update(id, h[1], h[2], h[3], h[4], h[5], h[6])
end

local function publish_noted()
  if #updates == 1 then
    redis.call('PUBLISH', P .. ':events', updates[1])
  elseif #updates > 1 then
    redis.call('PUBLISH', P .. ':events', '[' .. table.concat(updates, ',') .. ']')
  end
  updates = {}
end

-- Publishes the job's update and returns its reply, reading its hash once for both.
local function publish_reply(id)
  local r = redis.call('HGETALL', jkey(id))
  local h = {}
  for i = 1, #r, 2 do h[r[i]] = r[i + 1] end
  redis.call('PUBLISH', P .. ':events',
    update_json(id, h.status, h.progress, h.message, h.kind, h.attempts, h.scope))
  table.insert(r, 1, 'ok')
  return r
end

-- The worker must hold the job: running, with the worker as lease owner.
local function not_held(id, worker)
  local h = redis.call('HMGET', jkey(id), 'status', 'owner')
  if not h[1] then return {'notfound'} end
  if h[1] ~= 'running' or h[2] ~= worker then return {'conflict', h[1], h[2] or ''} end
  return nil
end

-- Takes a job's entry out of its stream: acknowledged (leaves the pending list) and deleted.
local function drop_entry(kind, entry)
  if entry then
    redis.call('XACK', skey(kind), GROUP, entry)
    redis.call('XDEL', skey(kind), entry)
  end
end

-- The org's index of open (queued or running) jobs. Hashes written before the index existed
-- hold no `org` field; their scope names the org.
local function open_key(org, scope)
  if not org then org = cjson.decode(scope).org end
  return P .. ':open:' .. org
end

-- Moves a job to a final status.
local function finish(id, status, now)
  local h = redis.call('HMGET', jkey(id), 'kind', 'entry', 'org', 'scope')
  drop_entry(h[1], h[2])
  redis.call('ZREM', open_key(h[3], h[4]), id)
  redis.call('ZREM', P .. ':leases', id)
  redis.call('ZREM', P .. ':delayed', id)
  redis.call('HSET', jkey(id), 'status', status, 'updated_ms', now, 'finished_ms', now)
  redis.call('HDEL', jkey(id), 'owner', 'lease_ms', 'entry')
end

-- The last entry of a kind's stream delivered to the group; later entries are undelivered.
local function last_delivered(kind)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', skey(kind))) do
    local name, last = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == GROUP then return last end
  end
  return '0-0'
end

-- True when stream entry id `a` comes before `b`.
local function older(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, bms = tonumber(ams), tonumber(bms)
  if ams ~= bms then return ams < bms end
  return tonumber(aseq) < tonumber(bseq)
end

-- Removes the entries of a kind's stream that the group is done with: those before both its
-- oldest pending entry and its first undelivered one. Whole stream nodes only ('~'), so it
-- costs far less than deleting entries one by one; what is left goes with a later trim.
local function trim(kind)
  local ms, seq = string.match(last_delivered(kind), '^(%d+)-(%d+)$')
  local floor = ms .. '-' .. (tonumber(seq) + 1)
  local pending = redis.call('XPENDING', skey(kind), GROUP, '-', '+', 1)
  if #pending > 0 and older(pending[1][1], floor) then floor = pending[1][1] end
  redis.call('XTRIM', skey(kind), 'MINID', '~', floor)
end
