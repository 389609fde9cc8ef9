-- daemon: acquires, renews or releases a cluster daemon's lease in one call
-- (DESIGN.md §6.4). forq:daemon:<name> holds "<identity>|<token>"; a new
-- holder takes the next token from forq:daemon:<name>:epoch, the holder
-- extends its own lease (compare-and-extend) or deletes it
-- (compare-and-delete), and nobody else can touch it. A node whose cooldown
-- key exists (it gave a crash-looping daemon away) does not acquire.
-- Tokens only grow even when Redis loses data (a restart without
-- persistence, a failover): every call first raises the epoch to the highest
-- token the caller knows (its own, or the highest it has seen); a holder
-- whose token is below the epoch is outrun; and when Redis is not the server
-- the last acquire saw (its run id changed, or it started empty less than a
-- lease TTL ago) nobody acquires for one lease TTL, by which time a holder
-- from before has renewed and been told, or has been fenced off.
-- KEYS: 1 forq:daemon:<name>, 2 forq:daemon:<name>:epoch,
--       3 forq:daemon:<name>:cooldown:<identity>, 4 forq:daemons,
--       5 forq:daemon:<name>:runid, 6 forq:daemon:<name>:settle
-- ARGV: 1 op: acquire | renew | release | cooldown (release, then set the
--       cooldown key), 2 identity, 3 token (renew, release) or the highest
--       token the caller has seen (acquire), 4 lease TTL (ms), 5 daemon name,
--       6 cooldown (s)
-- Returns: acquire: {the new token, 0 when held by someone, -2 in cooldown,
-- -3 settling; the epoch}; renew: the token while ours, 0 when not, -1 when
-- ours but outrun (the caller stops its daemon, then releases);
-- release/cooldown: 1 if it was ours.
local op = ARGV[1]
local known = tonumber(ARGV[3]) or 0
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if known > epoch then
  redis.call('SET', KEYS[2], known)
  epoch = known
end

-- true while a holder from before Redis lost or changed its data may still
-- be running its daemon.
local function settling()
  local info = redis.call('INFO', 'server')
  local run_id = string.match(info, 'run_id:(%x+)')
  local seen = redis.call('GET', KEYS[5])
  if seen ~= run_id then
    redis.call('SET', KEYS[5], run_id)
    local ms = tonumber(ARGV[4])
    if not seen then
      -- No record: a new Redis, or one that restarted empty; only a holder
      -- from before its start can be left, fenced one TTL after it.
      ms = ms - 1000 * tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
    end
    if ms > 0 then
      redis.call('SET', KEYS[6], '1', 'PX', ms)
    end
  end
  return redis.call('EXISTS', KEYS[6]) == 1
end

if op == 'acquire' then
  redis.call('SADD', KEYS[4], ARGV[5])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return {-2, epoch}
  end
  if settling() then
    return {-3, epoch}
  end
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return {0, epoch}
  end
  epoch = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[2] .. '|' .. epoch, 'PX', ARGV[4])
  return {epoch, epoch}
end
local mine = redis.call('GET', KEYS[1]) == ARGV[2] .. '|' .. ARGV[3]
if op == 'renew' then
  if not mine then
    return 0
  end
  if epoch > known then
    return -1
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return known
end
if mine then
  redis.call('DEL', KEYS[1])
end
if op == 'cooldown' then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[6])
end
if mine then
  return 1
end
return 0
