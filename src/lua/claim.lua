-- claim: records a job that a blocking BRPOPLPUSH already moved into the
-- working list as in-flight work (the blocking path of fetch.lua).
-- KEYS: 1 <identity>:work, 2 <identity>:workers
-- ARGV: 1 tid, 2 run_at, 3 queue name, 4 payload
local entry = '{"queue":' .. cjson.encode(ARGV[3]) .. ',"payload":' .. cjson.encode(ARGV[4]) ..
  ',"run_at":' .. ARGV[2] .. '}'
redis.call('HSET', KEYS[1], ARGV[1], entry)
redis.call('HSET', KEYS[2], ARGV[1], entry)
redis.call('EXPIRE', KEYS[1], 60)
redis.call('EXPIRE', KEYS[2], 60)
return 1
