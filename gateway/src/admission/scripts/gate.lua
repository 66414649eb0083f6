-- Decides whether one delivery task may be sent to its endpoint now, for
-- every gateway instance at once: the endpoint's circuit, its cap on
-- requests in flight and its rate (GCRA), checked and updated atomically.
-- Time is Redis's own clock, so instances with skewed clocks share one pace.
--
-- KEYS[1] circuit hash   KEYS[2] probe lease   KEYS[3] in-flight leases (zset)
-- KEYS[4] GCRA theoretical arrival time (µs)
-- KEYS[5] the tenant's flow epoch (bumped by settle.lua at each failure)
-- ARGV[1] rate (events/s; 0 = unlimited)  ARGV[2] max in flight (0 = no cap)
-- ARGV[3] lease (ms)  ARGV[4] lease token  ARGV[5] slot this task reserved
-- earlier (ms; 0 = none)  ARGV[6] wait while a half-open probe runs (ms)
--
-- Returns {verdict, at (ms), probe, failures in a row so far, the tenant's
-- flow epoch}:
--   0 go (probe = 1 when this is the half-open probe; a lease is taken)
--   1 circuit open or probing: try again at `at`
--   2 in-flight cap reached: try again shortly
--   3 over the rate: the slot at `at` is now reserved for this task
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local reserved = tonumber(ARGV[5])

local epoch = tonumber(redis.call('GET', KEYS[5]) or '0')
local probe = 0
local circuit = redis.call('HMGET', KEYS[1], 'failures', 'open_until')
local failures = tonumber(circuit[1] or '0')
local open_until = tonumber(circuit[2] or '0')
if open_until > 0 then
  if now < open_until then
    return {1, open_until, 0, failures, epoch}
  end
  -- Half-open: one task (holder of the probe lease) goes; the rest wait.
  if not redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', lease) then
    return {1, now + tonumber(ARGV[6]), 0, failures, epoch}
  end
  probe = 1
end

if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= cap then
    if probe == 1 then redis.call('DEL', KEYS[2]) end
    return {2, now, 0, failures, epoch}
  end
end

-- A task that reserved a slot earlier (and comes back at it, give or take
-- the scheduler's tick) already paid for it; anyone else takes the next slot.
if rate > 0 and not (reserved > 0 and reserved <= now + 50) then
  local interval = 1000000 / rate
  local tat = tonumber(redis.call('GET', KEYS[4]) or '0')
  if tat < now_us then tat = now_us end
  local next_tat = tat + interval
  redis.call('SET', KEYS[4], string.format('%.0f', next_tat),
    'PX', math.ceil((next_tat - now_us) / 1000) + 1000)
  if tat > now_us then
    if probe == 1 then redis.call('DEL', KEYS[2]) end
    return {3, math.ceil(tat / 1000), 0, failures, epoch}
  end
end

if cap > 0 then
  redis.call('ZADD', KEYS[3], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], lease)
end
return {0, now, probe, failures, epoch}
