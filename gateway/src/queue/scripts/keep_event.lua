-- Prepended to the scripts that need an event's hash (for its statuses per
-- endpoint). An event the gateway named is stored as its ingest entry
-- alone: its hash is made here, from the fields the caller passes (the
-- caller read the entry, so nothing is read again), expiring with the entry.
-- An event stored by ingest.lua has its hash already.
--
-- `body` is the event's body when the gateway named it, '' otherwise.
-- `statuses` is a flat list of (status field, status JSON) set with it.
--
-- Returns true when the hash exists (or was made) with the statuses set,
-- false when the event is past its retention (nothing is written).
local function hset_all(hash, list)
  -- In chunks: unpack() of a very long list overflows Lua's stack.
  for i = 1, #list, 400 do
    redis.call('HSET', hash, unpack(list, i, math.min(i + 399, #list)))
  end
end

local function keep_event(hash, tenant, id, event_type, timestamp, expire_at, now, body, statuses)
  if body == '' then
    if redis.call('EXISTS', hash) == 0 then
      return false
    end
    hset_all(hash, statuses)
    return true
  end
  -- An entry already past its retention (trimming is approximate) gets no
  -- hash: it would be gone at once.
  if tonumber(expire_at) <= tonumber(now) then
    return false
  end
  local fields = {'tenant', tenant, 'id', id, 'type', event_type, 'body', body, 'timestamp', timestamp}
  for _, v in ipairs(statuses) do
    fields[#fields + 1] = v
  end
  hset_all(hash, fields)
  redis.call('PEXPIREAT', hash, expire_at)
  return true
end
