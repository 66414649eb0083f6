-- Moves tasks whose time has come from the retry set into the delivery
-- stream. Each move (XADD then ZREM) happens inside this one script, so a
-- task is never lost or doubled even if the caller dies mid-way.
--
-- KEYS[1] retry set   KEYS[2] delivery stream
-- ARGV[1] now (ms)  ARGV[2] most tasks to move
--
-- Returns the number of tasks moved.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, task in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'j', task)
  redis.call('ZREM', KEYS[1], task)
end
return #due
