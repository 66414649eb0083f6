-- Prepended to the scripts that need an event's hash: an event the gateway
-- named is stored as its ingest entry alone, and gets its hash (copied
-- from the entry, expiring with it) only when something needs one.
--
-- Returns true when the hash exists or was made, false when neither it nor
-- the entry is kept any more.
local function keep_event(stream, entry_id, hash, tenant, id, event_type, timestamp, expire_at)
  if redis.call('EXISTS', hash) == 1 then
    return true
  end
  local found = redis.call('XRANGE', stream, entry_id, entry_id)
  if #found == 0 then
    return false
  end
  local fields = found[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'b' then
      redis.call('HSET', hash, 'tenant', tenant, 'id', id, 'type', event_type,
        'body', fields[i + 1], 'timestamp', timestamp)
      -- An entry already past its retention (trimming is approximate)
      -- makes a hash that is gone at once.
      redis.call('PEXPIREAT', hash, expire_at)
      return redis.call('EXISTS', hash) == 1
    end
  end
  return false
end
