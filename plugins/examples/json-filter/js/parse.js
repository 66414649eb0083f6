/**
 * Reading the filter's condition from the plugin's config, with errors that
 * say where in the config the problem is (`config at /all/1: ...`).
 */
import { OPS } from './condition.js';
import { debug, invalidConfig, stringify } from '../../../sdk-js/sdk.js';

const ORDERING_OPS = ['gt', 'gte', 'lt', 'lte'];

/**
 * Parses the plugin's config as a condition; throws an `invalid-config`
 * error saying where in the config the problem is.
 */
export function parseCondition(config) {
  return parseAt(config, '');
}

function parseAt(config, at) {
  const location = at === '' ? 'config' : `config at ${at}`;
  if (!(config instanceof Map)) {
    throw invalidConfig(`${location}: expected an object, found ${stringify(config)}`);
  }
  for (const group of ['all', 'any']) {
    const list = config.get(group);
    if (list === undefined) continue;
    if (config.size !== 1) throw invalidConfig(`${location}: \`${group}\` must be the only key`);
    if (!Array.isArray(list)) {
      throw invalidConfig(`${location}: \`${group}\` must be a list of conditions`);
    }
    if (list.length === 0) {
      throw invalidConfig(`${location}: \`${group}\` needs at least one condition`);
    }
    return { kind: group, conditions: list.map((item, i) => parseAt(item, `${at}/${group}/${i}`)) };
  }
  return parseTest(config, location);
}

function parseTest(object, location) {
  const fail = (message) => invalidConfig(`${location}: ${message}`);
  const unknown = [...object.keys()].find((k) => !['pointer', 'op', 'value'].includes(k));
  if (unknown !== undefined) {
    throw fail(`unknown key \`${unknown}\` (a condition is \`all\`, \`any\` or \`pointer\`/\`op\`/\`value\`)`);
  }

  const pointer = object.get('pointer');
  if (pointer === undefined) throw fail('missing `pointer` (or `all`/`any`)');
  if (typeof pointer !== 'string') throw fail('`pointer` must be a string');
  if (pointer !== '' && !pointer.startsWith('/')) {
    throw fail(`pointer ${debug(pointer)} must be empty or start with \`/\``);
  }

  const op = object.get('op');
  if (op === undefined) throw fail('missing `op`');
  if (typeof op !== 'string') throw fail('`op` must be a string');
  if (!OPS.includes(op)) throw fail(`unknown op ${debug(op)} (expected one of ${OPS.join(', ')})`);

  let value = object.get('value');
  if (op === 'exists') {
    if (value === undefined) value = true;
    if (typeof value !== 'boolean') throw fail('`exists` takes a boolean `value`');
  } else if (value === undefined) {
    throw fail('missing `value`');
  } else if (ORDERING_OPS.includes(op) && !['number', 'bigint', 'string'].includes(typeof value)) {
    throw fail('ordering ops take a number or string `value`');
  }
  return { kind: 'test', pointer, op, value };
}
