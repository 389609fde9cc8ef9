-- requeue: puts every job of a working list back on its queue (the front,
-- to run next, or the back) and clears the worker's Busy entry. Used when a
-- worker died mid-job and when a stop leaves jobs unfinished.
-- KEYS: 1 working list, 2 <identity>:work, 3 <identity>:workers, 4 queues
-- ARGV: 1 tid, 2 front | back, 3 queue used when a payload names none,
--       4 queue key prefix ("queue:")
-- Returns the number of jobs requeued.
local n = 0
while true do
  local job = redis.call('RPOP', KEYS[1])
  if not job then break end
  -- Decoded only to read the queue name; the payload is pushed unchanged.
  local q = ARGV[3]
  local ok, decoded = pcall(cjson.decode, job)
  if ok and type(decoded) == 'table' and type(decoded.queue) == 'string' and decoded.queue ~= '' then
    q = decoded.queue
  end
  if ARGV[2] == 'front' then
    redis.call('RPUSH', ARGV[4] .. q, job)
  else
    redis.call('LPUSH', ARGV[4] .. q, job)
  end
  redis.call('SADD', KEYS[4], q)
  n = n + 1
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return n
