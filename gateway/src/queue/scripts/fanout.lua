-- Replaces one ingest entry by what fan-out decided for each endpoint (a
-- delivery task, or only a status such as "dropped by a plugin"), and
-- acknowledges the entry, atomically: a crash before this script leaves the
-- entry pending (it is reclaimed and fanned out again), a crash after it
-- leaves nothing to redo. Tasks are never doubled.
--
-- The tasks added are counted in the tenant's backlog counter in the same step.
--
-- KEYS[1] ingest stream   KEYS[2] delivery stream   KEYS[3] event hash
-- KEYS[4] the tenant's backlog counter
-- ARGV[1] group  ARGV[2] ingest entry id
-- ARGV[3..9] keep_event's: tenant, event id, event type, timestamp, when the
--   event's hash expires (ms since the epoch), now (ms), body ('' when the
--   event has its hash from ingest.lua)
-- ARGV[10..] triples of (status field, status JSON, task JSON or "" for none)
--
-- The event's hash, which delivery reads, is made here with every status
-- when the gateway named the event (keep_event.lua, prepended to this script).
--
-- Returns the number of tasks added (0 when the entry was already handled).
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local statuses = {}
for i = 10, #ARGV, 3 do
  statuses[#statuses + 1] = ARGV[i]
  statuses[#statuses + 1] = ARGV[i + 1]
end
if not keep_event(KEYS[3], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], statuses) then
  return 0
end
local added = 0
for i = 10, #ARGV, 3 do
  if ARGV[i + 2] ~= '' then
    redis.call('XADD', KEYS[2], '*', 'j', ARGV[i + 2])
    added = added + 1
  end
end
if added > 0 then
  redis.call('INCRBY', KEYS[4], added)
end
return added
