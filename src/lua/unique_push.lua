-- unique_push: enqueues a job under its unique lock (DESIGN.md §6.3). The
-- lock forq:unique:<sha1 of the lock string> = jid is taken with NX and a
-- TTL, and the job is pushed only by the caller that got it, in one step.
-- Anyone may call it (forq push; a cron fire in its own script does the same
-- with the same key formula).
-- KEYS: 1 queue:<name> (or schedule when ARGV[7] is a score), 2 queues
-- ARGV: 1 key prefix ("forq:unique:"), 2 lock string, 3 jid, 4 lock TTL (ms),
--       5 payload, 6 queue name, 7 score ('' = push now)
-- Returns {1, jid} when pushed, {0, jid holding the lock} when not.
local key = ARGV[1] .. redis.sha1hex(ARGV[2])
if not redis.call('SET', key, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {0, redis.call('GET', key) or ''}
end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[7], ARGV[5])
else
  redis.call('LPUSH', KEYS[1], ARGV[5])
  redis.call('SADD', KEYS[2], ARGV[6])
end
return {1, ARGV[3]}
