-- Settles a batch of delivery tasks (one request carrying several events),
-- atomically.
--
-- A batch's stream entries are its members' own entries when it was just
-- collected, or its one batch entry when it came back from the retry set.
-- Each member is counted once in the tenant's backlog from fan-out until its
-- final outcome: a batch put to the retry set keeps the count, a finished
-- batch takes it down by one per member.
--
-- KEYS[1] delivery stream   KEYS[2] retry set   KEYS[3] tenant's backlog counter
-- KEYS[4..] the members' event hashes
-- ARGV[1] group  ARGV[2] "retry" or "finish"  ARGV[3] due time (ms)
-- ARGV[4] batch task (JSON)  ARGV[5] status field  ARGV[6] status (JSON)
-- ARGV[7..] the batch's stream entry ids
--
-- Returns 1 when settled; 0, changing nothing, when any entry was already
-- finished elsewhere (the others stay pending and are taken over later).
for i = 7, #ARGV do
  if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
    return 0
  end
end
for i = 7, #ARGV do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
if ARGV[2] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
for i = 4, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], ARGV[5], ARGV[6])
  end
end
if ARGV[2] == 'finish' and redis.call('DECRBY', KEYS[3], #KEYS - 3) <= 0 then
  redis.call('DEL', KEYS[3])
end
return 1
