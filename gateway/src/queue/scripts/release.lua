-- Releases tasks parked for one endpoint (its handshake passed, or it is
-- gone): the oldest parked first, each moved into the delivery stream in
-- the order it was parked (XADD then ZREM, inside this one script, so a
-- task is never lost or doubled). The endpoint leaves the parked index
-- once nothing of it is parked.
--
-- KEYS[1] the endpoint's park set   KEYS[2] the partition's parked index
-- KEYS[3] delivery stream
-- ARGV[1] most tasks to move   ARGV[2] the endpoint as the index names it
--
-- Returns the number of tasks moved.
local parked = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for _, task in ipairs(parked) do
  redis.call('XADD', KEYS[3], '*', 'j', task)
  redis.call('ZREM', KEYS[1], task)
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return #parked
