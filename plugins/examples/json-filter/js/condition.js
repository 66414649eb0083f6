/**
 * The filter's conditions and checking them against an event's data
 * (`parse.js` reads them from the config).
 *
 * A condition is `{kind: 'all' | 'any', conditions}` or a test
 * `{kind: 'test', pointer: '/amount', op: 'gt', value: 100n}` on the value at
 * a JSON pointer into the data. Tests on a missing value fail, except `ne`
 * (nothing differs from everything) and `exists` with `"value": false`.
 */
import { pointer, stringify } from '../../../sdk-js/sdk.js';

/** The longest rendering of a found value in a drop reason, in characters. */
const MAX_FOUND_CHARS = 64;

/** Every op, by its name in the config. */
export const OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'exists', 'contains'];

/**
 * `undefined` when `condition` holds for `data`, otherwise the reason it
 * does not, naming the failed test(s).
 */
export function check(condition, data) {
  switch (condition.kind) {
    case 'all':
      for (const c of condition.conditions) {
        const reason = check(c, data);
        if (reason !== undefined) return reason;
      }
      return undefined;
    case 'any': {
      const reasons = [];
      for (const c of condition.conditions) {
        const reason = check(c, data);
        if (reason === undefined) return undefined;
        reasons.push(reason);
      }
      return `none of [${reasons.join('; ')}]`;
    }
    default: {
      const found = pointer(data, condition.pointer);
      if (holds(condition.op, found, condition.value)) return undefined;
      return `${describe(condition)} failed (found ${renderFound(found)})`;
    }
  }
}

/** The condition as text: `/amount gt 100`, `(a and b)`, `(a or b)`. */
export function describe(condition) {
  if (condition.kind === 'test') {
    return `${condition.pointer} ${condition.op} ${stringify(condition.value)}`;
  }
  const joiner = condition.kind === 'all' ? ' and ' : ' or ';
  return `(${condition.conditions.map(describe).join(joiner)})`;
}

/** Whether `op` holds between `found` (`undefined`: nothing) and `expected`. */
function holds(op, found, expected) {
  if (found === undefined) return op === 'ne' || (op === 'exists' && expected === false);
  switch (op) {
    case 'eq':
      return jsonEq(found, expected);
    case 'ne':
      return !jsonEq(found, expected);
    // `compare` is `undefined` for values that do not compare: false.
    case 'gt':
      return compare(found, expected) > 0;
    case 'gte':
      return compare(found, expected) >= 0;
    case 'lt':
      return compare(found, expected) < 0;
    case 'lte':
      return compare(found, expected) <= 0;
    case 'exists':
      return expected === true;
    case 'contains':
      if (typeof found === 'string' && typeof expected === 'string') return found.includes(expected);
      return Array.isArray(found) && found.some((item) => jsonEq(item, expected));
  }
  return false;
}

const isNumber = (value) => typeof value === 'number' || typeof value === 'bigint';

/** JSON equality where numbers compare by value (`1 == 1.0`), as f64s. */
function jsonEq(a, b) {
  if (isNumber(a) && isNumber(b)) return Number(a) === Number(b);
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEq(x, b[i]));
  }
  if (a instanceof Map && b instanceof Map) {
    return a.size === b.size && [...a].every(([k, x]) => b.has(k) && jsonEq(x, b.get(k)));
  }
  return a === b;
}

/**
 * Orders numbers with numbers (as f64s) and strings with strings (by code
 * point, as Rust does); `undefined` for anything else.
 */
function compare(a, b) {
  if (isNumber(a) && isNumber(b)) return Math.sign(Number(a) - Number(b));
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  return undefined;
}

/**
 * Compares strings by code point (JavaScript's `<` compares UTF-16 units,
 * which puts U+10000 and above before U+E000..U+FFFF).
 */
function compareCodePoints(a, b) {
  // Surrogates (D800..DFFF) rank above E000..FFFF; the rest keep their order.
  const rank = (unit) => (unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit);
  for (let i = 0; i < a.length && i < b.length; i++) {
    const [x, y] = [rank(a.charCodeAt(i)), rank(b.charCodeAt(i))];
    if (x !== y) return x < y ? -1 : 1;
  }
  return Math.sign(a.length - b.length);
}

/** The found value as JSON, cut to `MAX_FOUND_CHARS` characters; `nothing` for none. */
function renderFound(found) {
  if (found === undefined) return 'nothing';
  const text = stringify(found);
  let chars = 0;
  for (let i = 0; i < text.length; chars++) {
    if (chars === MAX_FOUND_CHARS) return `${text.slice(0, i)}...`;
    i += text.codePointAt(i) > 0xffff ? 2 : 1;
  }
  return text;
}
