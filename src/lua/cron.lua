-- cron: deals with one cron entry's due ticks, exactly once in the cluster.
-- The watermark (the last tick dealt with) and the pushes move together in
-- this one script, fenced by the leader lease, so neither a replay by the
-- same leader nor a stale leader can push a tick twice.
-- With publishing on, the entry's sidekiq-cron 1.8 record moves with them:
-- its status (the Web tab's Disable/Enable) is obeyed, a tick whose member
-- is already in :enqueued was taken by a sidekiq-cron poller and is not
-- pushed again, and a pushed tick enters :enqueued, last_enqueue_time and
-- :jid_history in the same step, so a poller's ZADD guard sees it taken.
-- KEYS: 1 forq:leader, 2 forq:cron:<name>, 3 queue:<queue>, 4 queues,
--       5 forq:crons, 6 cron_jobs, 7 cron_job:<name>, 8 its :enqueued,
--       9 its :jid_history
-- ARGV: 1 the caller's lease, 2 entry name, 3 spec, 4 now (whole seconds),
--       5 newest due tick (the new watermark), 6 ticks skipped by the policy,
--       7 next tick after this round, 8 queue name,
--       9 lock string ("" = overlap allowed), 10 lock TTL in ms,
--       11 publish: 0 off, 1 on, 2 on and (re)write the record,
--       12 status to write with 2 ("" = keep the tab's, enabled if none),
--       13 last_enqueue_time text for now, 14 the cron_jobs member,
--       15 newest tick at or before now (seeds :enqueued), 16 its member,
--       17 number of record fields F, then F field/value pairs,
--       then quads: tick, jid, payload, :enqueued member (oldest first)
-- Returns {status, watermark, pushed, skipped, why, taken}: status -1 = not
-- the leader, 0 = new or changed entry (watermark set to now, nothing
-- pushed), 1 = done; why is "disabled" or "deleted" when the sidekiq-cron
-- tab stopped the ticks, else ""; taken counts ticks a poller had pushed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0, 0, 0, '', 0}
end
local publish = tonumber(ARGV[11])
local nfields = tonumber(ARGV[17])
local first = 18 + 2 * nfields
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('PERSIST', KEYS[2]) -- back after a removal: keep its state again
if publish == 2 then
  -- as sidekiq-cron's loader saves an entry: all fields, the status the
  -- file gives or the one the tab set, and back in cron_jobs
  for i = 18, first - 1, 2 do
    redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
  end
  if ARGV[12] ~= '' or not redis.call('HGET', KEYS[7], 'status') then
    redis.call('HSET', KEYS[7], 'status', ARGV[12] ~= '' and ARGV[12] or 'enabled')
  end
  redis.call('SADD', KEYS[6], ARGV[14])
end
local wm = tonumber(redis.call('HGET', KEYS[2], 'watermark'))
if not wm or redis.call('HGET', KEYS[2], 'spec') ~= ARGV[3] then
  -- never backfill: a new or changed entry starts from now
  redis.call('HSET', KEYS[2], 'watermark', ARGV[4], 'spec', ARGV[3], 'next', ARGV[7],
             'skipped', 0)
  redis.call('HDEL', KEYS[2], 'last_tick', 'last_jid', 'last_at')
  wm = tonumber(ARGV[4])
  if publish == 2 and tonumber(ARGV[15]) >= 0 and tonumber(ARGV[15]) <= wm then
    -- sidekiq-cron's save seeds :enqueued so that its poller does not
    -- enqueue the tick before the entry existed; do the same
    redis.call('ZADD', KEYS[8], 'NX', ARGV[15] .. '.0', ARGV[16])
  end
  return {0, wm, 0, 0, '', 0}
end
-- (a tick after the watermark is not seeded: it is still forq's to push)
if publish == 2 and tonumber(ARGV[15]) >= 0 and tonumber(ARGV[15]) <= wm
    and redis.call('EXISTS', KEYS[8]) == 0 then
  redis.call('ZADD', KEYS[8], ARGV[15] .. '.0', ARGV[16])
end
local pushed, skipped, taken = 0, tonumber(ARGV[6]), 0
local why = ''
if publish > 0 then
  local st = redis.call('HGET', KEYS[7], 'status')
  if not st and redis.call('EXISTS', KEYS[7]) == 0 then
    why = 'deleted' -- in the tab: stopped until forq publishes it again
  elseif st == 'disabled' then
    why = 'disabled'
  end
end
local lock
if ARGV[9] ~= '' then
  -- KEYS[1] is <namespace:>forq:leader: the same namespace for the lock
  local ns = string.sub(KEYS[1], 1, #KEYS[1] - #'forq:leader')
  lock = ns .. 'forq:unique:' .. redis.sha1hex(ARGV[9])
end
local jids = {}
for i = first, #ARGV, 4 do
  local tick = tonumber(ARGV[i])
  if tick > wm then
    if why ~= '' then
      skipped = skipped + 1
    elseif publish > 0 and redis.call('ZSCORE', KEYS[8], ARGV[i + 3]) then
      taken = taken + 1 -- a sidekiq-cron poller enqueued this tick
    -- overlap = forbid: the tick's job holds an until_executed lock from
    -- now until it finishes; while an earlier one holds it, ticks skip
    elseif not lock or redis.call('SET', lock, ARGV[i + 1], 'NX', 'PX', ARGV[10]) then
      redis.call('LPUSH', KEYS[3], ARGV[i + 2])
      redis.call('SADD', KEYS[4], ARGV[8])
      redis.call('HSET', KEYS[2], 'last_tick', tick, 'last_jid', ARGV[i + 1],
                 'last_at', ARGV[4])
      if publish > 0 then
        redis.call('ZADD', KEYS[8], tick .. '.0', ARGV[i + 3])
        jids[#jids + 1] = ARGV[i + 1]
      end
      pushed = pushed + 1
    else
      skipped = skipped + 1
    end
  end
end
if #jids > 0 then
  redis.call('HSET', KEYS[7], 'last_enqueue_time', ARGV[13])
  for _, jid in ipairs(jids) do
    redis.call('LPUSH', KEYS[9], '{"jid":"' .. jid .. '","enqueued":"' .. ARGV[13] .. '"}')
  end
  redis.call('LTRIM', KEYS[9], 0, 9)
  redis.call('ZREMRANGEBYSCORE', KEYS[8], 0, '(' .. (tonumber(ARGV[4]) - 86400))
end
local newest = tonumber(ARGV[5])
if newest > wm then
  wm = newest
end
redis.call('HSET', KEYS[2], 'watermark', wm, 'next', ARGV[7])
if skipped > 0 then
  redis.call('HINCRBY', KEYS[2], 'skipped', skipped)
end
if taken > 0 then
  redis.call('HINCRBY', KEYS[2], 'taken', taken)
end
return {1, wm, pushed, skipped, why, taken}
