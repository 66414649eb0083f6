/**
 * The WIT glue of `gateway:plugin@0.1.0` around a plugin's `handle`, as the
 * Rust SDK's glue does it: the event's data and the config are parsed from
 * JSON (empty config bytes mean `{}`), the plugin runs, and a delivered
 * event's data is written back as JSON. A plugin's entry module is
 *
 * ```js
 * import { entry } from '../../../sdk-js/glue.js';
 * import { handle as plugin } from './lib.js';
 * export const handle = entry(plugin);
 * ```
 */
import { write } from 'gateway:plugin/log@0.1.0';

import { invalidConfig, invalidEvent, JsonError, parse, stringify } from './sdk.js';

const encoder = new TextEncoder();

/** Parses `bytes`; a syntax error becomes the error `as` makes of `message`. */
function decode(bytes, as, what) {
  try {
    return parse(bytes);
  } catch (e) {
    if (e instanceof JsonError) throw as(`${what} is not JSON: ${e.message}`);
    throw e;
  }
}

/**
 * The component's `handle` for `plugin`, which takes the event and target
 * with `data` and `config` parsed, and `write` to log.
 */
export function entry(plugin) {
  return (event, target) => {
    const data = decode(event.data, invalidEvent, 'data');
    const config = target.config.length === 0 ? new Map() : decode(target.config, invalidConfig, 'config');
    const verdict = plugin({ ...event, data }, { ...target, config }, write);
    if (verdict.tag !== 'deliver') return verdict;
    return { tag: 'deliver', val: { ...verdict.val, data: encoder.encode(stringify(verdict.val.data)) } };
  };
}
