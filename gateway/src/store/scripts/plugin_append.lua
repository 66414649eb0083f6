-- Adds an uploaded version to a plugin, creating the plugin when it is new,
-- and stores the component's bytes, atomically: concurrent uploads get
-- consecutive version numbers and none is lost.
-- KEYS[1]: the plugin's record; KEYS[2]: the bytes' key; KEYS[3]: the
-- tenant's index of plugins.
-- ARGV[1]: the plugin's name; ARGV[2]: the new version as JSON, without its
-- number; ARGV[3]: the bytes.
-- Returns {1, version JSON} for a new version, or {0, version JSON} when
-- the newest version has the same sha256 (then nothing changes).
local new = cjson.decode(ARGV[2])
local json = redis.call('GET', KEYS[1])
local plugin = {name = ARGV[1], versions = {}}
if json then
  plugin = cjson.decode(json)
end
local last = plugin.versions[#plugin.versions]
if last and last.sha256 == new.sha256 then
  return {0, cjson.encode(last)}
end
new.version = last and (last.version + 1) or 1
table.insert(plugin.versions, new)
redis.call('SET', KEYS[1], cjson.encode(plugin))
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return {1, cjson.encode(new)}
