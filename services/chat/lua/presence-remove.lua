-- KEYS[1] this pod's hash, KEYS[2] the cluster-wide users hash
-- KEYS[3] the leaving sorted set (member -> when their last stream closed, ms)
-- ARGV[1] member ("id:username"), ARGV[2] now (ms)
-- Records one stream fewer. A member left with no stream anywhere starts the offline grace:
-- a reconcile announces them offline once it has passed, unless they are back by then.
-- Returns 1 when the member has no stream left anywhere.
local here = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if here <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if here < 0 then
  -- This pod's record was already reaped or repaired: there is nothing to undo cluster-wide.
  return 0
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  return 1
end
return 0
