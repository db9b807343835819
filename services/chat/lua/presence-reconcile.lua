-- KEYS[1] the pods sorted set (pod -> lease expiry, ms), KEYS[2] the cluster-wide users hash
-- KEYS[3] the announced set (members peers were last told are online)
-- KEYS[4] the leaving sorted set (member -> when their last stream closed, ms)
-- ARGV[1] now (ms), ARGV[2] the prefix of pod hashes (the pod name follows it)
-- ARGV[3] the offline grace (ms), ARGV[4] '1' to claim changes, '0' to only reap
-- First reaps the pods whose lease lapsed: their users go offline with no grace. Then, when
-- claiming, compares what peers were told with the truth and claims each difference, so
-- that exactly one caller announces it: online but not announced is claimed at once;
-- announced but offline is claimed once the member's grace has passed (at once when
-- they have no grace). Returns { claimed online members, claimed offline members, the
-- earliest time (ms) a grace ends, or -1 }. Pod hashes are derived from ARGV, so this
-- suits one Redis, not Redis Cluster.
local now = tonumber(ARGV[1])
local pods = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, pod in ipairs(pods) do
  local podKey = ARGV[2] .. pod
  local flat = redis.call('HGETALL', podKey)
  for i = 1, #flat, 2 do
    if redis.call('HINCRBY', KEYS[2], flat[i], -tonumber(flat[i + 1])) <= 0 then
      redis.call('HDEL', KEYS[2], flat[i])
      redis.call('ZREM', KEYS[4], flat[i])
    end
  end
  redis.call('DEL', podKey)
  redis.call('ZREM', KEYS[1], pod)
end
if ARGV[4] ~= '1' then
  return { {}, {}, -1 }
end
local online = {}
for _, member in ipairs(redis.call('HKEYS', KEYS[2])) do
  if redis.call('SADD', KEYS[3], member) == 1 then
    table.insert(online, member)
  end
end
local grace = tonumber(ARGV[3])
local offline = {}
local nextDue = -1
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('HEXISTS', KEYS[2], member) == 0 then
    local since = redis.call('ZSCORE', KEYS[4], member)
    local due = since and (tonumber(since) + grace) or now
    if due > now then
      if nextDue == -1 or due < nextDue then
        nextDue = due
      end
    else
      redis.call('SREM', KEYS[3], member)
      redis.call('ZREM', KEYS[4], member)
      table.insert(offline, member)
    end
  end
end
-- A grace left over for a member who is online again, or was never announced, means nothing.
for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if redis.call('HEXISTS', KEYS[2], member) == 1 or redis.call('SISMEMBER', KEYS[3], member) == 0 then
    redis.call('ZREM', KEYS[4], member)
  end
end
return { online, offline, nextDue }
