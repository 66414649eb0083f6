/**
 * `field-mapper`: a config-driven version transform. It moves, removes and
 * sets values in an event's data at JSON pointers, and writes the schema
 * version, so simple version transforms need no code (see the README for
 * the config). This file reads the config and checks the event and
 * versions; `mapping.js` rewrites the data, `pointer.js` walks it.
 */
import { readMove, readPointer, readSets, rewrite } from './mapping.js';
import { deliver, invalidConfig, invalidEvent, parseConfig, read, readStruct } from '../../../sdk-js/sdk.js';

/**
 * The plugin's config, every key optional: `event_type` and `from_version`
 * (the only type and version accepted), `to_version` (the version written;
 * the endpoint's when absent), then `moves`, `remove` and `set`, applied in
 * that order. Unknown keys are refused.
 */
const readConfig = (config) => {
  const none = () => undefined;
  return readStruct(config, 'Config', {
    event_type: [read.option(read.string), none],
    from_version: [read.option(read.u32), none],
    to_version: [read.option(read.u32), none],
    moves: [read.list(readMove), () => []],
    remove: [read.list(readPointer), () => []],
    set: [readSets, () => []],
  });
};

/**
 * The plugin: data at one schema version in, rewritten data at another out.
 * `event` and `target` are the WIT records with `data` and `config` parsed;
 * `log` is the host's `write(level, message)`.
 */
export function handle(event, target, log = () => {}) {
  // serde would also read a list as the fields in order; refuse that.
  if (!(target.config instanceof Map)) throw invalidConfig('config: expected an object');
  const config = parseConfig(target.config, readConfig);
  const { to_version: to } = config;
  const wanted = target.schemaVersion ?? undefined;
  if (to !== undefined && wanted !== undefined && to !== wanted) {
    throw invalidConfig(`config: \`to_version\` is ${to}, but the endpoint wants v${wanted}`);
  }
  if (config.event_type !== undefined && config.event_type !== event.eventType) {
    throw invalidEvent(`expected a ${config.event_type} event, got ${event.eventType}`);
  }
  const version = event.schemaVersion ?? undefined;
  if (config.from_version !== undefined && version !== config.from_version) {
    throw invalidEvent(`expected schema version ${config.from_version}, got ${version ?? 'none'}`);
  }
  const counts = rewrite(event.data, config.moves, config.remove, config.set);
  log(
    'debug',
    `moved ${counts.moved} (skipped ${counts.skipped} missing), removed ${counts.removed}, set ${counts.set}`,
  );
  return deliver({ ...event, schemaVersion: to ?? wanted ?? version });
}
