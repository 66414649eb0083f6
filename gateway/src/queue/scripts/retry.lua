-- Moves a failed delivery task from the stream to the retry set, due at a
-- later time, atomically: the task is in exactly one of the two.
--
-- KEYS[1] delivery stream   KEYS[2] retry set   KEYS[3] event hash
-- ARGV[1] group  ARGV[2] task entry id  ARGV[3] due time (ms)  ARGV[4] next task (JSON)
-- ARGV[5] status field  ARGV[6] status (JSON)
--
-- Returns 1 when scheduled, 0 when the task had already been handled elsewhere.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
end
return 1
