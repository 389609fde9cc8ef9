-- enqueue_due: moves due entries of the schedule or retry set onto their
-- queues. The member is removed and pushed in one step, and only by the
-- caller whose ZREM succeeds, so racing pollers never enqueue a job twice.
-- Leader only: fenced by the lease the caller believes it holds.
-- KEYS: 1 schedule or retry, 2 queues, 3 forq:leader
-- ARGV: 1 queue key prefix ("queue:"), 2 the caller's lease, then triples:
--       member as stored, payload to push (with a new enqueued_at), queue name
-- Returns the number of jobs moved, or -1 when the caller is not the leader.
if redis.call('GET', KEYS[3]) ~= ARGV[2] then
  return -1
end
local moved = 0
for i = 3, #ARGV, 3 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('LPUSH', ARGV[1] .. ARGV[i + 2], ARGV[i + 1])
    redis.call('SADD', KEYS[2], ARGV[i + 2])
    moved = moved + 1
  end
end
return moved
