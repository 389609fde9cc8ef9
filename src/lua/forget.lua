-- forget: removes a dead node from the registry once the orphan sweep found
-- none of its working lists left. Leader only and fenced like lose.lua:
-- nothing is written unless the caller still holds the leader lease and the
-- node's key is still gone (a node that was only cut off stays registered).
-- KEYS: 1 forq:leader, 2 forq:node:<identity>, 3 forq:nodes,
--       4 forq:sweep:strikes, 5 processes
-- ARGV: 1 the sweep's lease, 2 the node's identity
-- Returns 'forgotten', 'fenced' (the lease is not the caller's any more) or
-- 'alive' (the node's key is back).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 'fenced'
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'alive'
end
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('SREM', KEYS[5], ARGV[2])
return 'forgotten'
