-- Settles one delivery task by its outcome, atomically: the task leaves the
-- delivery stream and is finished (delivered, dead-lettered, dropped) or
-- goes to the retry set (a failed attempt, or held back by flow control),
-- or is parked in its endpoint's park set (the endpoint must pass its
-- handshake first), and the outcome is recorded on every member event.
--
-- A task is a single delivery (one member: itself) or a batch (several).
-- Its stream entries are its own one entry, or, for a batch just collected,
-- its members' entries. Each member is counted once in the tenant's backlog
-- from fan-out until its final outcome: a task put to the retry set or
-- parked keeps the count, a finished one takes it down by one per member.
--
-- KEYS[1] delivery stream   KEYS[2] retry set, or the endpoint's park set
-- KEYS[3] tenant's backlog counter   KEYS[4] the partition's parked index
-- KEYS[5..] the members' event hashes
-- ARGV[1] group  ARGV[2] "retry", "park" or "finish"
-- ARGV[3] due time, or for "park" the order it was parked in (ms)
-- ARGV[4] the task as it goes to the retry or park set (JSON)
-- ARGV[5] status field  ARGV[6] status (JSON)
-- ARGV[7] for "park": the endpoint as the parked index names it (else "")
-- ARGV[8..] the stream entry ids
--
-- Returns 1 when settled; 0, changing nothing, when the task was already
-- settled elsewhere (with several entries: when any of them was; the
-- others stay pending and are taken over later).
if #ARGV > 8 then
  for i = 8, #ARGV do
    if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
      return 0
    end
  end
end
local acked = 0
for i = 8, #ARGV do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
if acked == 0 then
  return 0
end
if ARGV[2] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
elseif ARGV[2] == 'park' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('SADD', KEYS[4], ARGV[7])
end
-- Every member's hash has its status field since fan-out: a field new to a
-- hash of one field means the hash had expired, and it is not brought back.
for i = 5, #KEYS do
  if redis.call('HSET', KEYS[i], ARGV[5], ARGV[6]) == 1 and redis.call('HLEN', KEYS[i]) == 1 then
    redis.call('DEL', KEYS[i])
  end
end
if ARGV[2] == 'finish' and redis.call('DECRBY', KEYS[3], #KEYS - 4) <= 0 then
  redis.call('DEL', KEYS[3])
end
return 1
