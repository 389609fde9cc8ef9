-- fetch: moves the first job found in the given queues into this worker's
-- working list and records it as in-flight work for the Web UI's Busy page,
-- in one step, so a job is always in exactly one place in Redis.
-- KEYS: 1 working list, 2 <identity>:work, 3 <identity>:workers,
--       4.. queue:<name> in the order to try
-- ARGV: 1 tid, 2 run_at (integer seconds), 3.. queue names matching KEYS[4..]
-- Returns {queue name, payload}, or false when every queue is empty.
for i = 4, #KEYS do
  local job = redis.call('RPOPLPUSH', KEYS[i], KEYS[1])
  if job then
    local q = ARGV[i - 1]
    -- The payload is embedded as a JSON string, never decoded (precision).
    local entry = '{"queue":' .. cjson.encode(q) .. ',"payload":' .. cjson.encode(job) ..
      ',"run_at":' .. ARGV[2] .. '}'
    redis.call('HSET', KEYS[2], ARGV[1], entry)
    redis.call('HSET', KEYS[3], ARGV[1], entry)
    redis.call('EXPIRE', KEYS[2], 60)
    redis.call('EXPIRE', KEYS[3], 60)
    return {q, job}
  end
end
return false
