-- leader: acquires, renews or releases the leader lease in one call
-- (DESIGN.md §6.1). forq:leader holds "<identity>|<epoch>"; a new leader
-- takes the next epoch (forq:leader:epoch only grows), the holder extends
-- its own lease (compare-and-extend) or deletes it (compare-and-delete),
-- and nobody else can touch it.
-- KEYS: 1 forq:leader, 2 forq:leader:epoch
-- ARGV: 1 identity, 2 lease TTL (ms), 3 '1' to release
-- Returns the caller's epoch while it holds the lease, else 0.
local cur = redis.call('GET', KEYS[1])
if cur then
  local id, epoch = string.match(cur, '^(.*)|(%d+)$')
  if id ~= ARGV[1] then
    return 0
  end
  if ARGV[3] == '1' then
    redis.call('DEL', KEYS[1])
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(epoch)
end
if ARGV[3] == '1' then
  return 0
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return epoch
