-- claim: records a job that a blocking BRPOPLPUSH already moved into the
-- working list as in-flight work (the blocking path of fetch.lua).
-- KEYS: 1 <identity>:work, 2 <identity>:workers, 3 <identity> (its busy
--       count follows the rows, once the master registered it)
-- ARGV: 1 tid, 2 run_at, 3 queue name, 4 payload
local entry = '{"queue":' .. cjson.encode(ARGV[3]) .. ',"payload":' .. cjson.encode(ARGV[4]) ..
  ',"run_at":' .. ARGV[2] .. '}'
local added = redis.call('HSET', KEYS[1], ARGV[1], entry)
redis.call('HSET', KEYS[2], ARGV[1], entry)
redis.call('EXPIRE', KEYS[1], 60)
redis.call('EXPIRE', KEYS[2], 60)
if added == 1 and redis.call('HEXISTS', KEYS[3], 'info') == 1 then
  redis.call('HSET', KEYS[3], 'busy', redis.call('HLEN', KEYS[1]))
end
return 1
