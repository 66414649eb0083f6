/**
 * `json-filter`: delivers an event only when its data meets the conditions
 * in the plugin's config, and drops it otherwise, naming the condition that
 * failed. See the README for the config format.
 */
import { check } from './condition.js';
import { parseCondition } from './parse.js';
import { deliver, drop } from '../../../sdk-js/sdk.js';

/**
 * The plugin: one config-driven condition over the event's data. `event`
 * and `target` are the WIT records with `data` and `config` parsed.
 */
export function handle(event, target) {
  const condition = parseCondition(target.config);
  const reason = check(condition, event.data);
  return reason === undefined ? deliver(event) : drop(`json-filter: ${reason}`);
}
