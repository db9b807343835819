-- KEYS[1] the pods sorted set, KEYS[2] this pod's hash, KEYS[3] the cluster-wide users hash
-- KEYS[4] the leaving sorted set (member -> when their last stream closed, ms)
-- ARGV[1] pod name, ARGV[2] lease expiry (ms), ARGV[3..] member, count pairs: every stream
-- this pod holds, as it knows them (none at start-up: a new process under an old name).
-- Extends the pod's lease and makes its record match what it knows, adjusting the
-- cluster-wide counts by the difference. This repairs a record that was reaped during a
-- long pause, that missed an update while Redis was unreachable, or that a killed process
-- under the same name left behind. A member repaired away gets no grace: the next
-- reconcile announces them offline at once. Returns the number of members repaired away.
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local known = {}
for i = 3, #ARGV, 2 do
  known[ARGV[i]] = tonumber(ARGV[i + 1])
end
local stored = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  stored[flat[i]] = tonumber(flat[i + 1])
end
local gone = 0
local function adjust(member, delta)
  if delta ~= 0 and redis.call('HINCRBY', KEYS[3], member, delta) <= 0 then
    redis.call('HDEL', KEYS[3], member)
    redis.call('ZREM', KEYS[4], member)
    gone = gone + 1
  end
end
for member, n in pairs(stored) do
  if known[member] == nil then
    redis.call('HDEL', KEYS[2], member)
    adjust(member, -n)
  end
end
for member, n in pairs(known) do
  local delta = n - (stored[member] or 0)
  if delta ~= 0 then
    redis.call('HSET', KEYS[2], member, n)
    adjust(member, delta)
  end
end
return gone
