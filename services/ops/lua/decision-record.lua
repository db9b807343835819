-- KEYS[1] the listed decisions (a list of JSON, newest first)
-- KEYS[2] the last report (a hash: decision = JSON, key = its decisionKey)
-- ARGV[1] the decision as JSON, ARGV[2] its decisionKey
-- ARGV[3] '1' when its action is listed at all, ARGV[4] how many listed decisions to keep
-- Keeps the decision as the last report, and lists it unless the last report had the same key.
-- Returns 1 when it was listed.
local previous = redis.call('HGET', KEYS[2], 'key')
redis.call('HSET', KEYS[2], 'decision', ARGV[1], 'key', ARGV[2])
if ARGV[3] == '1' and previous ~= ARGV[2] then
  redis.call('LPUSH', KEYS[1], ARGV[1])
  redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[4]) - 1)
  return 1
end
return 0
