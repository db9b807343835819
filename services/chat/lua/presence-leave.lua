-- KEYS[1] the pods sorted set, KEYS[2] the cluster-wide users hash
-- KEYS[3] the leaving sorted set (member -> when their last stream closed, ms)
-- ARGV[1] the prefix of pod hashes (the pod name follows it), ARGV[2] this pod's name, ARGV[3] now (ms)
-- A graceful leave (the drain): removes this pod and its streams now. Its users left with no
-- stream anywhere start the offline grace, as after a normal close, since their clients
-- are reconnecting elsewhere. Returns how many members that left with no stream.
local podKey = ARGV[1] .. ARGV[2]
local flat = redis.call('HGETALL', podKey)
local left = 0
for i = 1, #flat, 2 do
  if redis.call('HINCRBY', KEYS[2], flat[i], -tonumber(flat[i + 1])) <= 0 then
    redis.call('HDEL', KEYS[2], flat[i])
    redis.call('ZADD', KEYS[3], ARGV[3], flat[i])
    left = left + 1
  end
end
redis.call('DEL', podKey)
redis.call('ZREM', KEYS[1], ARGV[2])
return left
