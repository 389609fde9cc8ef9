-- batch: one round trip per batch for a worker running quick jobs. First it
-- records the outcomes of the jobs it finished (each job leaves the working
-- list in this same step, as in finish.lua), then it moves up to `max` new
-- jobs into the working list. Each job of the batch is fetched with its own
-- queue order (strict: config order; weighted: drawn by the caller for each
-- job, as Sidekiq draws one per fetch), so batching keeps the queue
-- semantics. A queue gives at most its length / `share` jobs to one batch,
-- so a worker never takes more than its share of a short queue (no
-- hoarding: one job each when few are waiting).
-- KEYS: 1 working list, 2 <identity>:work, 3 <identity>:workers, 4 retry,
--       5 dead, 6 queues, 7 <identity> (its busy count follows the rows),
--       8.. queue:<name> in config order
-- ARGV: 1 tid, 2 run_at, 3 batch max (0 = record only), 4 share,
--       5 dead cut-off score, 6 dead limit, 7 queue key prefix,
--       8 number of outcomes N, then N groups of 6:
--         payload, outcome (ack|retry|dead|discard|requeue), stored payload,
--         score, forq:lost:<jid> key, queue name
--       then the queue names matching KEYS[8..], then the number of orders
--       M and M orders ("2,0,1": 0-based queue indexes), used in turn;
--       with max 0 (record only), optionally the queue and payload of the
--       job the worker starts next: its Busy row (run_at: ARGV 2)
-- Returns {queue, job, queue, job...} or {} when nothing was fetched.
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
-- The process's busy count is the number of rows, as Sidekiq's heartbeat
-- writes both from one snapshot; only once the master registered it.
local function busy_count()
  if redis.call('HEXISTS', KEYS[7], 'info') == 1 then
    redis.call('HSET', KEYS[7], 'busy', redis.call('HLEN', KEYS[2]))
  end
end
local function busy_drop()
  if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
    busy_count()
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
end
local function busy_row(queue, payload)
  -- The Busy page's row; the payload is embedded as a JSON string, never
  -- decoded (precision).
  local entry = '{"queue":' .. cjson.encode(queue) .. ',"payload":' .. cjson.encode(payload) ..
    ',"run_at":' .. ARGV[2] .. '}'
  local added = redis.call('HSET', KEYS[2], ARGV[1], entry)
  redis.call('HSET', KEYS[3], ARGV[1], entry)
  redis.call('EXPIRE', KEYS[2], 60)
  redis.call('EXPIRE', KEYS[3], 60)
  if added == 1 then
    busy_count()
  end
end
local max = tonumber(ARGV[3])
if max == 0 then
  local nextq = ARGV[base + 6 * n]
  if nextq then
    busy_row(nextq, ARGV[base + 6 * n + 1])
  elseif redis.call('LLEN', KEYS[1]) == 0 then
    busy_drop()
  end
  return {}
end
local names = base + 6 * n
local nq = #KEYS - 7
local norders = tonumber(ARGV[names + nq])
local orders = names + nq + 1
local out, left, empty = {}, {}, {}
for slot = 0, max - 1 do
  local got, capped = false, false
  for idx in string.gmatch(ARGV[orders + slot % norders], '%d+') do
    local i = tonumber(idx)
    if not empty[i] then
      local key = KEYS[8 + i]
      if left[i] == nil then
        local cap = math.floor(redis.call('LLEN', key) / tonumber(ARGV[4]))
        left[i] = cap < 1 and 1 or cap
      end
      -- A queue that gave its share ends the batch: taking from the next
      -- queue in the order instead would break the queue order.
      if left[i] == 0 then
        capped = true
        break
      end
      local job = redis.call('RPOPLPUSH', key, KEYS[1])
      if job then
        left[i] = left[i] - 1
        table.insert(out, ARGV[names + i])
        table.insert(out, job)
        got = true
        break
      end
      empty[i] = true
    end
  end
  if capped or not got then break end
end
if #out > 0 then
  -- The row of the batch's first job, which starts now. A later one is
  -- shown when the outcomes recorded before it (max 0, above) or the
  -- master's beat (busy.lua) update the row.
  busy_row(out[1], out[2])
  return out
end
busy_drop()
return {}
