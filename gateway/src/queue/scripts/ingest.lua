-- Stores one accepted event, atomically with its idempotency record.
-- Either everything below happens or nothing does, so an idempotency key
-- never points at an event that was not stored.
--
-- KEYS[1] ingest stream   KEYS[2] event hash   KEYS[3] idempotency key
-- ARGV[1] tenant  ARGV[2] event id  ARGV[3] event type  ARGV[4] body
-- ARGV[5] timestamp (RFC 3339)  ARGV[6] retention (ms)
-- ARGV[7] idempotency window (ms); 0 when the event has no dedup key (its
--         id was made by the gateway): then KEYS[3] is neither read nor written
-- ARGV[8] stream entry's j field (JSON; its b field is the body)
-- ARGV[9] MINID bound for trimming
--
-- Returns {1, event id} when stored, {0, event id} when the key was seen before.
local dedup = ARGV[7] ~= '0'
if dedup then
  local previous = redis.call('GET', KEYS[3])
  if previous then
    return {0, previous}
  end
end
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[9], '*', 'j', ARGV[8], 'b', ARGV[4])
redis.call('HSET', KEYS[2],
  'tenant', ARGV[1], 'id', ARGV[2], 'type', ARGV[3], 'body', ARGV[4],
  'timestamp', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if dedup then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[7])
end
return {1, ARGV[2]}
