-- unique_end: what a job's unique locks become once its outcome is written
-- (worker, right after the outcome script). Compare-and-delete or
-- compare-and-extend only: a lock another jid holds is never touched.
-- KEYS: 1 forq:unique:<sha1> (its runtime lease is <that>:run)
-- ARGV: 1 jid, 2 the lock: 'keep', 'release' or a TTL (ms) to set,
--       3 the run lease: 'keep' or 'release'
-- Returns 1.
local function mine(k)
  return redis.call('GET', k) == ARGV[1]
end
local run = KEYS[1] .. ':run'
if ARGV[2] == 'release' then
  if mine(KEYS[1]) then
    redis.call('DEL', KEYS[1])
  end
elseif ARGV[2] ~= 'keep' and mine(KEYS[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if ARGV[3] == 'release' and mine(run) then
  redis.call('DEL', run)
end
return 1
