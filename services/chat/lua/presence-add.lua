-- KEYS[1] this pod's hash (member -> streams here)
-- KEYS[2] the cluster-wide users hash (member -> streams everywhere)
-- KEYS[3] the pods sorted set (pod -> lease expiry, ms)
-- KEYS[4] the announced set (members peers were last told are online)
-- KEYS[5] the leaving sorted set (member -> when their last stream closed, ms)
-- ARGV[1] member ("id:username"), ARGV[2] pod name, ARGV[3] lease expiry (ms)
-- ARGV[4] '1' when the caller announces changes it claims, '0' when it cannot
-- Records one more stream for the member; a member waiting out the offline grace is back.
-- Returns 1 when this call claimed the member's online announcement (they were not announced).
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[4] == '1' and redis.call('SADD', KEYS[4], ARGV[1]) == 1 then
  return 1
end
return 0
