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

-- Every reply is a flat array: 'ok' then the job hash, or an outcome word and its details.
local function reply(id)
  local r = redis.call('HGETALL', jkey(id))
  table.insert(r, 1, 'ok')
  return r
end

-- Job progress goes to every process subscribed to the queue's channel, in the same atomic step
-- as the change itself.
local function publish(id)
  local h = redis.call('HMGET', jkey(id), 'status', 'progress', 'message', 'kind', 'attempts', 'scope')
  redis.call('PUBLISH', P .. ':events', cjson.encode({
    id = tonumber(id), status = h[1], progress = tonumber(h[2]), message = h[3] or cjson.null,
    kind = h[4], attempts = tonumber(h[5]), scope = cjson.decode(h[6])
  }))
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

-- Moves a job to a final status.
local function finish(id, status, now)
  local h = redis.call('HMGET', jkey(id), 'kind', 'entry')
  drop_entry(h[1], h[2])
  redis.call('ZREM', P .. ':leases', id)
  redis.call('ZREM', P .. ':delayed', id)
  redis.call('HSET', jkey(id), 'status', status, 'updated_ms', now, 'finished_ms', now)
  redis.call('HDEL', jkey(id), 'owner', 'lease_ms', 'entry')
end
