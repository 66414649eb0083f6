-- Takes the handshakes that are due: each is pushed a lease ahead in the
-- same set before it is returned, so no other gateway takes it meanwhile,
-- and one whose gateway dies mid-way comes due again when the lease ends.
--
-- KEYS[1] the due set   ARGV[1] now (ms)   ARGV[2] the lease's end (ms)
-- ARGV[3] most to take
--
-- Returns the members taken.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member)
end
return due
