-- Makes sure an event has its hash (see keep_event.lua, prepended), for a
-- task queued outside fan-out (a replay).
--
-- KEYS[1] event hash
-- ARGV[1..7] keep_event's: tenant, event id, event type, timestamp, when
--   the hash expires (ms since the epoch), now (ms), body ('' when the
--   event has its hash from ingest.lua)
--
-- Returns 1 when the event is kept, 0 when it is past its retention.
if keep_event(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], {}) then
  return 1
end
return 0
