-- batch: one round trip per batch for a worker running fast jobs. First it
-- records the outcomes of the jobs it finished (each job leaves the working
-- list in this same step, as in finish.lua), then it moves up to a batch of
-- new jobs from the first non-empty queue into the working list. The batch
-- is capped by the queue's length divided by `share` so that a worker never
-- takes more than its share of a short queue (no hoarding: one job each
-- when few are waiting).
-- KEYS: 1 working list, 2 <identity>:work, 3 <identity>:workers, 4 retry,
--       5 dead, 6 queues, 7.. queue:<name> in the order to try
-- ARGV: 1 tid, 2 run_at, 3 batch max (0 = record only), 4 share,
--       5 dead cut-off score, 6 dead limit, 7 queue key prefix,
--       8 number of outcomes N, then N groups of 6:
--         payload, outcome (ack|retry|dead|discard|requeue), stored payload,
--         score, forq:lost:<jid> key, queue name
--       then the queue names matching KEYS[7..]
-- Returns {queue name, job...} or {} when nothing was fetched.
local n = tonumber(ARGV[8])
local base = 9
for i = 0, n - 1 do
  local o = base + 6 * i
  local payload, what = ARGV[o], ARGV[o + 1]
  -- Only the remover records the outcome: a replay after a lost reply, or
  -- a job someone else already put back, changes nothing.
  local removed = redis.call('LREM', KEYS[1], -1, payload)
  if removed == 0 then
    what = 'none'
  end
  if what == 'ack' then
    redis.call('DEL', ARGV[o + 4])
  elseif what == 'retry' then
    redis.call('ZADD', KEYS[4], ARGV[o + 3], ARGV[o + 2])
  elseif what == 'dead' then
    redis.call('ZADD', KEYS[5], ARGV[o + 3], ARGV[o + 2])
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[5])
    redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -tonumber(ARGV[6]))
  elseif what == 'requeue' then
    redis.call('RPUSH', ARGV[7] .. ARGV[o + 5], payload)
    redis.call('SADD', KEYS[6], ARGV[o + 5])
  end
end
local max = tonumber(ARGV[3])
if max == 0 then
  if redis.call('LLEN', KEYS[1]) == 0 then
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
  return {}
end
local names = base + 6 * n
for i = 7, #KEYS do
  local len = redis.call('LLEN', KEYS[i])
  if len > 0 then
    local take = math.floor(len / tonumber(ARGV[4]))
    if take < 1 then take = 1 end
    if take > max then take = max end
    local q = ARGV[names + i - 7]
    local out = {q}
    for _ = 1, take do
      local job = redis.call('RPOPLPUSH', KEYS[i], KEYS[1])
      if not job then break end
      table.insert(out, job)
    end
    -- The Busy page shows the first job of the batch; the payload is
    -- embedded as a JSON string, never decoded (precision).
    local entry = '{"queue":' .. cjson.encode(q) .. ',"payload":' .. cjson.encode(out[2]) ..
      ',"run_at":' .. ARGV[2] .. '}'
    redis.call('HSET', KEYS[2], ARGV[1], entry)
    redis.call('HSET', KEYS[3], ARGV[1], entry)
    redis.call('EXPIRE', KEYS[2], 60)
    redis.call('EXPIRE', KEYS[3], 60)
    return out
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {}
