-- unique_start: a worker is about to run a job that has a unique lock type.
--   until_executing: release the enqueue lock (compare-and-delete), run.
--   until_executed, until_expired: take the lock when it is absent (a Ruby
--     client pushed the job); held by another jid = a duplicate, dropped
--     from the working list unrun. until_executed's lock becomes a lease
--     the master renews while the job runs; until_expired keeps its TTL.
--   while_executing, until_and_while_executing: take <key>:run as a lease;
--     held by another jid = the job is moved to the schedule set to try
--     again later (it keeps its enqueue lock), else the latter releases its
--     enqueue lock and runs.
-- KEYS: 1 working list, 2 schedule
-- ARGV: 1 key prefix ("forq:unique:"), 2 lock string, 3 jid, 4 lock type,
--       5 lease (ms), 6 lock TTL (ms), 7 payload as fetched,
--       8 score to run again at (conflict of a while type)
-- Returns {verdict, lock key, holder}: verdict 'run', 'drop' or 'later';
-- holder is the jid holding the lock (the caller's own for 'run').
local key = ARGV[1] .. redis.sha1hex(ARGV[2])
local jid, kind = ARGV[3], ARGV[4]
local function release(k)
  if redis.call('GET', k) == jid then
    redis.call('DEL', k)
  end
end
if kind == 'until_executing' then
  release(key)
  return {'run', key, jid}
end
if kind == 'until_executed' or kind == 'until_expired' then
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, jid, 'PX', kind == 'until_executed' and ARGV[5] or ARGV[6])
  elseif holder ~= jid then
    redis.call('LREM', KEYS[1], -1, ARGV[7])
    return {'drop', key, holder}
  elseif kind == 'until_executed' then
    redis.call('PEXPIRE', key, ARGV[5])
  end
  return {'run', key, jid}
end
local run = key .. ':run'
local holder = redis.call('GET', run)
if holder and holder ~= jid then
  if redis.call('LREM', KEYS[1], -1, ARGV[7]) > 0 then
    redis.call('ZADD', KEYS[2], ARGV[8], ARGV[7])
  end
  return {'later', key, holder}
end
if kind == 'until_and_while_executing' then
  release(key)
end
redis.call('SET', run, jid, 'PX', ARGV[5])
return {'run', key, jid}
