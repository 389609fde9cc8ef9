-- finish: writes a job's outcome and takes it out of the working list in the
-- same step: a job leaves the working list only together with its outcome.
-- KEYS: 1 working list, 2 <identity>:work, 3 <identity>:workers, 4 retry, 5 dead,
--       6 forq:lost:<jid> (a success clears the job's count of abnormal losses)
-- ARGV: 1 tid, 2 payload as fetched, 3 outcome: ack | retry | dead | discard,
--       4 payload to store (retry/dead), 5 score, 6 dead cut-off score,
--       7 dead set size limit, optionally the unique lock the job held
--       (as in lose.lua): 8 forq:unique:<sha1>, 9 jid, 10 '1' when the lock
--       is a runtime lease (until_executed), 11 its TTL (ms) for a retry
-- Returns how many copies were removed from the working list (0 means it
-- was requeued by someone else meanwhile; the outcome is written anyway).
local removed = redis.call('LREM', KEYS[1], -1, ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local outcome = ARGV[3]
if outcome == 'ack' then
  redis.call('DEL', KEYS[6])
elseif outcome == 'retry' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
elseif outcome == 'dead' then
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[6])
  -- Sidekiq's inclusive range: keeps at most limit - 1 entries.
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -tonumber(ARGV[7]))
end
local key = ARGV[8]
if key and key ~= '' then
  if redis.call('GET', key .. ':run') == ARGV[9] then
    redis.call('DEL', key .. ':run')
  end
  if ARGV[10] == '1' and redis.call('GET', key) == ARGV[9] then
    if outcome == 'retry' then
      redis.call('PEXPIRE', key, ARGV[11])
    else
      redis.call('DEL', key)
    end
  end
end
return removed
