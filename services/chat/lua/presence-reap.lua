-- KEYS[1] the pods sorted set, KEYS[2] the cluster-wide users hash
-- ARGV[1] reap pods whose lease expired at or before this time (ms)
-- ARGV[2] the prefix of pod hashes (the pod name follows it)
-- ARGV[3] optional: reap this pod now, whatever its lease (a graceful leave)
-- Removes dead pods and their streams from the cluster-wide counts. Returns the members
-- that went offline. Pod hashes are derived from ARGV, so this suits one Redis, not Redis Cluster.
local pods = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if ARGV[3] then
  table.insert(pods, ARGV[3])
end
local offline = {}
for _, pod in ipairs(pods) do
  local podKey = ARGV[2] .. pod
  local flat = redis.call('HGETALL', podKey)
  for i = 1, #flat, 2 do
    if redis.call('HINCRBY', KEYS[2], flat[i], -tonumber(flat[i + 1])) <= 0 then
      redis.call('HDEL', KEYS[2], flat[i])
      table.insert(offline, flat[i])
    end
  end
  redis.call('DEL', podKey)
  redis.call('ZREM', KEYS[1], pod)
end
return offline
