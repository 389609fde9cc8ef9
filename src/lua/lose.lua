-- lose: takes one job out of a dead worker's working list. The job that was
-- running counts a loss for its jid; on the threshold-th loss within the
-- counter's lifetime it is a poison pill and goes to the dead set instead of
-- back to its queue. Jobs the worker had not started go back to the front.
-- For another node's list (the orphan sweep) nothing is written unless the
-- caller still holds the leader lease and the node's key is still gone: a
-- leader paused mid-round, or a node that was only cut off, stops it here.
-- KEYS: 1 working list, 2 queues, 3 dead, 4 forq:lost:<jid>, 5 forq:leader,
--       6 forq:node:<identity of the list's node>
-- ARGV: 1 payload, 2 queue name, 3 queue key prefix, 4 front | back,
--       5 count a loss (1 | 0), 6 threshold, 7 counter TTL (s),
--       8 dead payload, 9 now (score), 10 dead cut-off score, 11 dead limit,
--       12 the sweep's lease ('' for a lane of the caller's own node: no
--       fence), then the unique lock the running job held, if any
--       (unique.c; '' otherwise): 13 forq:unique:<sha1> (its <key>:run
--       lease is released), 14 jid, 15 '1' when the lock itself is a
--       runtime lease (until_executed: a requeue gives it back TTL 16 (ms),
--       a dead job releases it)
-- Returns {action, losses}: action 'requeued', 'dead', 'gone' (someone
-- else already took it), 'fenced' (the lease is not the caller's any more)
-- or 'alive' (the node's key is back); nothing was written for the last two.
if ARGV[12] ~= '' then
  if redis.call('GET', KEYS[5]) ~= ARGV[12] then
    return {'fenced', 0}
  end
  if redis.call('EXISTS', KEYS[6]) == 1 then
    return {'alive', 0}
  end
end
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return {'gone', 0}
end
local function unlock(dead)
  local key, jid = ARGV[13], ARGV[14]
  if not key or key == '' then
    return
  end
  if redis.call('GET', key .. ':run') == jid then
    redis.call('DEL', key .. ':run')
  end
  if ARGV[15] == '1' and redis.call('GET', key) == jid then
    if dead then
      redis.call('DEL', key)
    else
      redis.call('PEXPIRE', key, ARGV[16])
    end
  end
end
local losses = 0
if ARGV[5] == '1' then
  losses = redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], ARGV[7])
  if losses >= tonumber(ARGV[6]) then
    redis.call('ZADD', KEYS[3], ARGV[9], ARGV[8])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[10])
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[11]))
    redis.call('DEL', KEYS[4])
    unlock(true)
    return {'dead', losses}
  end
end
if ARGV[4] == 'front' then
  redis.call('RPUSH', ARGV[3] .. ARGV[2], ARGV[1])
else
  redis.call('LPUSH', ARGV[3] .. ARGV[2], ARGV[1])
end
redis.call('SADD', KEYS[2], ARGV[2])
unlock(false)
return {'requeued', losses}
