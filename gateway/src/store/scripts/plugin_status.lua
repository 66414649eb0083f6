-- Settles the compile status of one version of a plugin, in its stored
-- record, only while that version is still `compiling` (a deleted plugin or
-- version, or one settled already, is left alone).
-- KEYS[1]: the plugin's record. ARGV[1]: the version's sha256.
-- ARGV[2]: `ready` or `failed`. ARGV[3]: the reason of a failure, or "".
-- Returns 1 when the record changed, 0 otherwise.
local json = redis.call('GET', KEYS[1])
if not json then
  return 0
end
local plugin = cjson.decode(json)
local changed = 0
for _, version in ipairs(plugin.versions) do
  if version.sha256 == ARGV[1] and version.status == 'compiling' then
    version.status = ARGV[2]
    if ARGV[3] ~= '' then
      version.reason = ARGV[3]
    end
    changed = 1
  end
end
if changed == 1 then
  redis.call('SET', KEYS[1], cjson.encode(plugin))
end
return changed
