-- KEYS[1] this pod's hash, KEYS[2] the cluster-wide users hash
-- ARGV[1] member ("id:username")
-- Records one stream fewer. Returns 1 when the member just went offline.
local here = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if here <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if here < 0 then
  -- This pod's record was already reaped: there is nothing to undo cluster-wide.
  return 0
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
