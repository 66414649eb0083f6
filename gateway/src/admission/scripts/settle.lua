-- Records the outcome of one attempt for its endpoint's flow control: frees
-- its in-flight lease, and moves the circuit. A success closes it; a failure
-- counts one more failure in a row, and opens the circuit when there are
-- enough of them and it is not open already (a failed half-open probe
-- re-opens it). The first failure of a row records when the row began
-- (`since`), for quarantine.
--
-- KEYS[1] circuit hash   KEYS[2] probe lease   KEYS[3] in-flight leases (zset)
-- KEYS[4] the tenant's flow epoch, bumped by every failure: an instance
-- that found an endpoint of the tenant clear trusts that while it stays the
-- same.
-- ARGV[1] lease token  ARGV[2] 1 = succeeded, 0 = failed
-- ARGV[3] failures in a row that open the circuit  ARGV[4] open for (ms)
--
-- Returns {the open_until (ms) set by this call or 0, failures in a row,
-- since (ms)}; {0, 0, 0} for a success.
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {0, 0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_for = tonumber(ARGV[4])
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], 86400000)
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures == 1 then
  redis.call('HSET', KEYS[1], 'since', now)
end
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or now)
-- An idle circuit forgets its failures after a day.
redis.call('PEXPIRE', KEYS[1], open_for + 86400000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if failures >= tonumber(ARGV[3]) and open_until <= now then
  open_until = now + open_for
  redis.call('HSET', KEYS[1], 'open_until', open_until)
  redis.call('DEL', KEYS[2])
  return {open_until, failures, since}
end
return {0, failures, since}
