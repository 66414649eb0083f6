/**
 * The component's entry, the WIT glue of `gateway:plugin@0.1.0` around
 * `handle` in `lib.js`, as the Rust SDK's glue does it: the event's data and
 * the config are parsed from JSON (empty config bytes mean `{}`), `handle`
 * runs, and a delivered event's data is written back as JSON.
 *
 * This file is the same in every JavaScript example.
 */
import { write } from 'gateway:plugin/log@0.1.0';

import { handle as plugin } from './lib.js';
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

export function handle(event, target) {
  const data = decode(event.data, invalidEvent, 'data');
  const config = target.config.length === 0 ? new Map() : decode(target.config, invalidConfig, 'config');
  const verdict = plugin({ ...event, data }, { ...target, config }, write);
  if (verdict.tag !== 'deliver') return verdict;
  return { tag: 'deliver', val: { ...verdict.val, data: encoder.encode(stringify(verdict.val.data)) } };
}
