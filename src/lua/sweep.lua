-- sweep: one orphan-sweep round (DESIGN.md §5-6). Leader only, fenced by
-- the lease the caller believes it holds. Finds nodes whose heartbeat key is gone; a node
-- is declared dead on its second missing round in a row (a slow node whose
-- key is merely late gets a second chance) and is returned so the caller
-- recovers its working lists. After Redis restarts (its run id changes) no
-- node is judged for one heartbeat TTL: their keys may simply be gone with
-- the old data set.
-- KEYS: 1 forq:leader, 2 forq:nodes, 3 forq:sweep:strikes,
--       4 forq:sweep:runid, 5 forq:sweep:settle
-- ARGV: 1 my identity, 2 my lease, 3 node key prefix ("forq:node:"),
--       4 strikes needed, 5 settle time (s)
-- Returns {status, dead identities...}: status 'fenced' (not the leader),
-- 'settling', or 'swept'.
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return {'fenced'}
end
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if redis.call('GET', KEYS[4]) ~= run_id then
  redis.call('SET', KEYS[4], run_id)
  redis.call('SET', KEYS[5], '1', 'EX', ARGV[5])
  redis.call('DEL', KEYS[3])
  return {'settling'}
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {'settling'}
end
local out = {'swept'}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[3] .. id) == 1 then
    redis.call('HDEL', KEYS[3], id)
  elseif id ~= ARGV[1] then
    local strikes = redis.call('HINCRBY', KEYS[3], id, 1)
    if strikes >= tonumber(ARGV[4]) then
      -- Stays in forq:nodes until a scan finds none of its working lists
      -- left (the caller SREMs it then), so a recovery cut short is taken
      -- up again by whoever sweeps next.
      table.insert(out, id)
    end
  end
end
return out
