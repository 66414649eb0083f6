-- Replaces a stored record only if it is still what the caller read
-- (compare and set), and bumps the version counter that caches of it watch.
-- A record that is gone stays gone: a change never brings it back.
--
-- KEYS[1] the record   KEYS[2] its version counter
-- ARGV[1] the record as read   ARGV[2] the new record
--
-- Returns 1 when replaced, 0 when it changed since it was read (read it
-- again and retry), -1 when it no longer exists.
local current = redis.call('GET', KEYS[1])
if not current then
  return -1
end
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
