/**
 * `schema-upgrade`: rewrites `order.created` events from schema version 1 to
 * version 2 (see the README for both shapes). The mapping itself lives in
 * `upgrade.js` as plain functions; this file checks versions and config.
 */
import { deliver, invalidConfig, invalidEvent, parseConfig, parseData, read, readStruct } from '../../../sdk-js/sdk.js';
import { readOrderV1, toV2 } from './upgrade.js';

/** The event type this plugin upgrades. */
const EVENT_TYPE = 'order.created';
/** The version it reads. */
const FROM_VERSION = 1;
/** The version it writes. */
const TO_VERSION = 2;

/**
 * The plugin's config: `default_currency`, the currency of v1 orders that
 * do not name one (`EUR` by default); other keys are refused.
 */
const readConfig = (config) =>
  readStruct(config, 'Config', { default_currency: [read.string, () => 'EUR'] });

/**
 * The plugin: `order.created` v1 in, v2 out. `event` and `target` are the
 * WIT records with `data` and `config` parsed.
 */
export function handle(event, target) {
  const config = parseConfig(target.config, readConfig);
  const wanted = target.schemaVersion;
  if (wanted != null && wanted !== TO_VERSION) {
    throw invalidConfig(
      `this plugin upgrades ${EVENT_TYPE} v${FROM_VERSION} to v${TO_VERSION}, but the endpoint wants v${wanted}`,
    );
  }
  if (event.eventType !== EVENT_TYPE) {
    throw invalidEvent(`expected a ${EVENT_TYPE} event, got ${event.eventType}`);
  }
  const version = event.schemaVersion;
  if (version != null && version !== FROM_VERSION) {
    throw invalidEvent(`expected schema version ${FROM_VERSION}, got ${version}`);
  }
  const v1 = parseData(event.data, readOrderV1);
  return deliver({ ...event, data: toV2(v1, config.default_currency), schemaVersion: TO_VERSION });
}
