-- KEYS[1] this pod's hash (member -> streams here)
-- KEYS[2] the cluster-wide users hash (member -> streams everywhere)
-- KEYS[3] the pods sorted set (pod -> lease expiry, ms)
-- ARGV[1] member ("id:username"), ARGV[2] pod name, ARGV[3] lease expiry (ms)
-- Records one more stream for the member. Returns 1 when the member just came online.
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('HINCRBY', KEYS[2], ARGV[1], 1) == 1 then
  return 1
end
return 0
