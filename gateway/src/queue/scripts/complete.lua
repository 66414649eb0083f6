-- Finishes a delivery task (delivered, dead-lettered or dropped): removes it
-- from the delivery stream and records the endpoint's status on the event.
--
-- When this call finished the task, the tenant's backlog counter goes down
-- by one (and is deleted at zero); a repeated call changes nothing.
--
-- KEYS[1] delivery stream   KEYS[2] event hash   KEYS[3] tenant's backlog counter
-- ARGV[1] group  ARGV[2] task entry id  ARGV[3] status field  ARGV[4] status (JSON)
--
-- Returns 1 when this call finished the task, 0 when it was already finished.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if acked == 1 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
if acked == 1 and redis.call('DECR', KEYS[3]) <= 0 then
  redis.call('DEL', KEYS[3])
end
return acked
