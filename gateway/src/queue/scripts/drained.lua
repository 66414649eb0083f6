-- Whether partition N holds no work: every entry of its ingest and delivery
-- streams read and acknowledged by the stage's group, no retry waiting, no
-- task parked. One script, so the answer is one moment's (a task moves
-- between these keys only by scripts on the same partition).
--
-- KEYS[1] ingest stream   KEYS[2] delivery stream
-- KEYS[3] retry set       KEYS[4] parked index
-- ARGV[1] fan-out group   ARGV[2] delivery group
--
-- Returns 1 when drained, 0 when not.
local function field(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then
      return reply[i + 1]
    end
  end
  return nil
end

local function stream_done(key, group)
  if redis.call('EXISTS', key) == 0 then
    return true
  end
  local last = field(redis.call('XINFO', 'STREAM', key), 'last-generated-id')
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    if field(g, 'name') == group then
      return field(g, 'pending') == 0 and field(g, 'last-delivered-id') == last
    end
  end
  -- No group yet: done only if nothing was ever added.
  return last == '0-0'
end

if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('SCARD', KEYS[4]) > 0 then
  return 0
end
if stream_done(KEYS[1], ARGV[1]) and stream_done(KEYS[2], ARGV[2]) then
  return 1
end
return 0
