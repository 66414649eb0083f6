-- Makes sure an event has its hash (see keep_event.lua, prepended), for a
-- task queued outside fan-out (a replay).
--
-- KEYS[1] ingest stream   KEYS[2] event hash
-- ARGV[1] ingest entry id  ARGV[2] tenant  ARGV[3] event id  ARGV[4] event type
-- ARGV[5] timestamp  ARGV[6] when the hash expires (ms since the epoch)
--
-- Returns 1 when the event is kept, 0 when it is past its retention.
if keep_event(KEYS[1], ARGV[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]) then
  return 1
end
return 0
