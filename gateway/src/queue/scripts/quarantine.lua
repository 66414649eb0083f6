-- Moves one stream entry that does not decode out of its stream and into
-- its partition's quarantine stream, raw, with why: it names no tenant or
-- event to dead-letter it for, and left pending it would be read again
-- forever. Atomic, and only if the entry is still pending (a crash before
-- it leaves the entry to be read again; a second reader moves nothing).
--
-- KEYS[1] the entry's stream   KEYS[2] the partition's quarantine stream
-- ARGV[1] group  ARGV[2] entry id  ARGV[3] its `j` field  ARGV[4] its `b`
-- field ('' when none)  ARGV[5] why it does not decode  ARGV[6] entries kept at most
--
-- Returns 1 when moved, 0 when the entry was no longer pending.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
  'stream', KEYS[1], 'id', ARGV[2], 'j', ARGV[3], 'b', ARGV[4], 'error', ARGV[5])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
