-- daemon: acquires, renews or releases a cluster daemon's lease in one call
-- (DESIGN.md §6.4). forq:daemon:<name> holds "<identity>|<token>"; a new
-- holder takes the next token (forq:daemon:<name>:epoch only grows), the
-- holder extends its own lease (compare-and-extend) or deletes it
-- (compare-and-delete), and nobody else can touch it. A node whose cooldown
-- key exists (it gave a crash-looping daemon away) does not acquire.
-- KEYS: 1 forq:daemon:<name>, 2 forq:daemon:<name>:epoch,
--       3 forq:daemon:<name>:cooldown:<identity>, 4 forq:daemons
-- ARGV: 1 op: acquire | renew | release | cooldown (release, then set the
--       cooldown key), 2 identity, 3 token (renew, release), 4 lease TTL (ms),
--       5 daemon name, 6 cooldown (s)
-- Returns: acquire: the new token, 0 when held by someone, -2 in cooldown;
-- renew: the token while ours, else 0; release/cooldown: 1 if it was ours.
local op = ARGV[1]
if op == 'acquire' then
  redis.call('SADD', KEYS[4], ARGV[5])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return -2
  end
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
  end
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[2] .. '|' .. token, 'PX', ARGV[4])
  return token
end
local mine = redis.call('GET', KEYS[1]) == ARGV[2] .. '|' .. ARGV[3]
if op == 'renew' then
  if not mine then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return tonumber(ARGV[3])
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
