-- cron: deals with one cron entry's due ticks, exactly once in the cluster.
-- The watermark (the last tick dealt with) and the pushes move together in
-- this one script, fenced by the leader lease, so neither a replay by the
-- same leader nor a stale leader can push a tick twice.
-- KEYS: 1 forq:leader, 2 forq:cron:<name>, 3 queue:<queue>, 4 queues,
--       5 forq:crons
-- ARGV: 1 the caller's lease, 2 entry name, 3 spec, 4 now (whole seconds),
--       5 newest due tick (the new watermark), 6 ticks skipped by the policy,
--       7 next tick after this round, 8 queue name,
--       9 lock string ("" = overlap allowed), 10 lock TTL in ms,
--       then triples: tick, jid, payload (oldest first)
-- Returns {status, watermark, pushed, skipped}: status -1 = not the leader,
-- 0 = new or changed entry (watermark set to now, nothing pushed), 1 = done.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0, 0, 0}
end
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('PERSIST', KEYS[2]) -- back after a removal: keep its state again
local wm = tonumber(redis.call('HGET', KEYS[2], 'watermark'))
if not wm or redis.call('HGET', KEYS[2], 'spec') ~= ARGV[3] then
  -- never backfill: a new or changed entry starts from now
  redis.call('HSET', KEYS[2], 'watermark', ARGV[4], 'spec', ARGV[3], 'next', ARGV[7],
             'skipped', 0)
  redis.call('HDEL', KEYS[2], 'last_tick', 'last_jid', 'last_at')
  return {0, tonumber(ARGV[4]), 0, 0}
end
local pushed, skipped = 0, tonumber(ARGV[6])
local lock
if ARGV[9] ~= '' then
  -- KEYS[1] is <namespace:>forq:leader: the same namespace for the lock
  local ns = string.sub(KEYS[1], 1, #KEYS[1] - #'forq:leader')
  lock = ns .. 'forq:unique:' .. redis.sha1hex(ARGV[9])
end
for i = 11, #ARGV, 3 do
  local tick = tonumber(ARGV[i])
  if tick > wm then
    -- overlap = forbid: the tick's job holds an until_executed lock from
    -- now until it finishes; while an earlier one holds it, ticks skip
    if not lock or redis.call('SET', lock, ARGV[i + 1], 'NX', 'PX', ARGV[10]) then
      redis.call('LPUSH', KEYS[3], ARGV[i + 2])
      redis.call('SADD', KEYS[4], ARGV[8])
      redis.call('HSET', KEYS[2], 'last_tick', tick, 'last_jid', ARGV[i + 1],
                 'last_at', ARGV[4])
      pushed = pushed + 1
    else
      skipped = skipped + 1
    end
  end
end
local newest = tonumber(ARGV[5])
if newest > wm then
  wm = newest
end
redis.call('HSET', KEYS[2], 'watermark', wm, 'next', ARGV[7])
if skipped > 0 then
  redis.call('HINCRBY', KEYS[2], 'skipped', skipped)
end
return {1, wm, pushed, skipped}
