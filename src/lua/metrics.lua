-- metrics: one worker's flush of Sidekiq Metrics counts (skmetrics.h), in
-- the 7.x and 8.x layouts at once, as Sidekiq's ExecutionTracker#flush
-- writes them: HINCRBY of <class>|p, |f, |ms on the minute hashes, the
-- saturating u16 histogram buckets per class and minute, and their TTLs.
-- KEYS: 1 7.x minute hash, 2 8.x minute hash, 3 8.x ten-minute rollup,
--       then per class: its 7.x histogram, its 8.x histogram
-- ARGV: 1 TTL of minute hashes and histograms, 2 TTL of the rollup, then
--       per class: name, runs, failures, ms ('' when no success was timed),
--       histogram "bucket:count,..."
local short, rollup = ARGV[1], ARGV[2]
local n = (#ARGV - 2) / 5
for i = 0, n - 1 do
  local a = 3 + 5 * i
  local cls, p, f, ms = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  for k = 1, 3 do
    redis.call('HINCRBY', KEYS[k], cls .. '|p', p)
    if f ~= '0' then
      redis.call('HINCRBY', KEYS[k], cls .. '|f', f)
    end
    if ms ~= '' then
      redis.call('HINCRBY', KEYS[k], cls .. '|ms', ms)
    end
  end
  local cmd = {'OVERFLOW', 'SAT'}
  for idx, cnt in string.gmatch(ARGV[a + 4], '(%d+):(%d+)') do
    table.insert(cmd, 'INCRBY')
    table.insert(cmd, 'u16')
    table.insert(cmd, '#' .. idx)
    table.insert(cmd, cnt)
  end
  for k = 4 + 2 * i, 5 + 2 * i do
    if #cmd > 2 then
      redis.call('BITFIELD', KEYS[k], unpack(cmd))
    end
    redis.call('EXPIRE', KEYS[k], short)
  end
end
redis.call('EXPIRE', KEYS[1], short)
redis.call('EXPIRE', KEYS[2], short)
redis.call('EXPIRE', KEYS[3], rollup)
return n
