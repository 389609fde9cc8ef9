-- unique_renew: the master extends the runtime leases of the unique jobs
-- its workers run (compare-and-extend: a lease that lapsed and went to
-- another jid is left alone).
-- KEYS: the lease keys (forq:unique:<sha1> or forq:unique:<sha1>:run)
-- ARGV: 1 lease (ms), then the jid expected in each key, in KEYS order
-- Returns how many leases were extended.
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    n = n + 1
  end
end
return n
