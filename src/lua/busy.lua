-- busy: at each beat, the Busy page's row of every busy worker becomes the
-- job it runs now, and the process's busy count the number of rows. A
-- worker writes its row when it fetches (batch.lua, claim.lua) and when it
-- records outcomes between jobs; a batch's later job that starts without a
-- round trip before it is shown from here, by the master, from the
-- scoreboard (jid, start time): its payload is found in the worker's
-- working list, so a job already finished (no longer there) is never
-- shown. The payload is embedded as it is, never re-encoded (precision);
-- it is decoded only to confirm its jid.
-- KEYS: 1 <identity>, 2 <identity>:work, 3 <identity>:workers,
--       3 + i: working list of the i-th busy worker
-- ARGV: per busy worker: tid (its lane), jid, run_at (integer seconds)
-- Returns the busy count written.
for i = 1, #KEYS - 3 do
  local tid, jid, run_at = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  for _, p in ipairs(redis.call('LRANGE', KEYS[3 + i], 0, -1)) do
    if string.find(p, jid, 1, true) then
      local ok, job = pcall(cjson.decode, p)
      if ok and type(job) == 'table' and job.jid == jid then
        local queue = type(job.queue) == 'string' and job.queue or 'default'
        local entry = '{"queue":' .. cjson.encode(queue) .. ',"payload":' .. cjson.encode(p) ..
          ',"run_at":' .. run_at .. '}'
        redis.call('HSET', KEYS[2], tid, entry)
        redis.call('HSET', KEYS[3], tid, entry)
        break
      end
    end
  end
end
local busy = redis.call('HLEN', KEYS[2])
redis.call('HSET', KEYS[1], 'busy', busy)
return busy
