/**
 * `pii-redactor`: blanks out the fields named in the config, then redacts
 * email addresses and card numbers in every string value of the event's
 * data, at any depth. The text scanning lives in `scanner.js`.
 */
import { redact } from './scanner.js';
import { child, debug, deliver, invalidConfig, parseConfig, pointerTokens, read, readStruct } from '../../../sdk-js/sdk.js';

/** What a field named in the config is replaced with. */
const REDACTED_FIELD = '[redacted]';

/**
 * The plugin's config: `pointers`, JSON pointers into the data whose values
 * are replaced whole, whatever their type (e.g. `/customer/phone`); missing
 * ones are skipped.
 */
const readConfig = (config) => readStruct(config, 'Config', { pointers: [read.list(read.string), () => []] });

/**
 * The plugin: data in, the same data with PII redacted out. `event` and
 * `target` are the WIT records with `data` and `config` parsed; `log` is the
 * host's `write(level, message)`.
 */
export function handle(event, target, log = () => {}) {
  const config = parseConfig(target.config, readConfig);
  const bad = config.pointers.find((p) => !p.startsWith('/'));
  if (bad !== undefined) throw invalidConfig(`config: pointer ${debug(bad)} must start with \`/\``);
  let fields = 0;
  for (const pointer of config.pointers) {
    if (replaceAt(event.data, pointer, REDACTED_FIELD)) fields++;
  }
  const [data, matches] = redactStrings(event.data);
  log('debug', `redacted ${fields} fields and ${matches} matches`);
  return deliver({ ...event, data });
}

/**
 * Replaces the value `pointer` names inside `data` with `replacement`;
 * whether there was one.
 */
function replaceAt(data, pointer, replacement) {
  const tokens = pointerTokens(pointer);
  const last = tokens.pop();
  const parent = tokens.reduce((current, token) => child(current, token), data);
  if (child(parent, last) === undefined) return false;
  if (parent instanceof Map) parent.set(last, replacement);
  else parent[Number(last)] = replacement;
  return true;
}

/**
 * `[value, count]`: `value` with every string inside it redacted, at any
 * depth (object keys are left alone; arrays and objects are changed in
 * place), and how many emails and card numbers were replaced.
 */
export function redactStrings(value) {
  if (typeof value === 'string') return redact(value);
  let count = 0;
  const redactItem = (item) => {
    const [redacted, n] = redactStrings(item);
    count += n;
    return redacted;
  };
  if (Array.isArray(value)) value.forEach((item, i) => (value[i] = redactItem(item)));
  else if (value instanceof Map) for (const [key, item] of value) value.set(key, redactItem(item));
  return [value, count];
}
