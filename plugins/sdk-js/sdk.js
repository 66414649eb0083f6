/**
 * What the Rust SDK (`gateway-plugin`) gives a plugin, for JavaScript: the
 * verdict and error values `handle` returns or throws, and JSON as the SDK
 * sees it (serde_json with `preserve_order`), so that a plugin ported from
 * Rust reads, compares and writes exactly what the Rust plugin does.
 * `JSON.parse` and `JSON.stringify` differ from serde_json in ways that
 * change bytes: they reorder integer-like keys, lose integers past 2^53,
 * print `1.0` as `1`, and accept `1e400` and lone surrogates.
 *
 * JSON values:
 *
 * - `null`, booleans and strings as usual;
 * - integers as `bigint` (serde_json's u64 and i64, exact);
 * - other numbers as `number` (serde_json's f64, parsed the way serde_json
 *   parses them, including its rounding);
 * - arrays as `Array`s, objects as `Map`s (keys keep their order; setting an
 *   existing key keeps its place, a new one goes at the end).
 *
 * `parse` refuses what serde_json refuses (nesting past 128 levels included)
 * with the same message; `stringify` writes compact JSON, floats as serde_json
 * does (`1.0`, `1e+16`, `1.5e-7`). The helpers at the end word errors as
 * serde's derived `Deserialize` does, for configs read like Rust structs.
 *
 * Every JavaScript example imports it from here (`plugins/sdk-js`).
 */

// ---------------------------------------------------------------- verdicts and errors

/** Deliver `event` (unchanged or rewritten). */
export const deliver = (event) => ({ tag: 'deliver', val: event });
/** Do not deliver the event to this endpoint, for `reason`. */
export const drop = (reason) => ({ tag: 'drop', val: reason });
/** The error to throw when the plugin's configuration is unusable. */
export const invalidConfig = (message) => ({ tag: 'invalid-config', val: message });
/** The error to throw when the event is not one the plugin can handle. */
export const invalidEvent = (message) => ({ tag: 'invalid-event', val: message });
/** The error to throw on any other failure. */
export const failed = (message) => ({ tag: 'failed', val: message });

// ---------------------------------------------------------------- parsing

/** A JSON text or value that is not what was expected; serde's wording. */
export class JsonError extends Error {}

const U64_MAX = 2n ** 64n - 1n;
const I64_MIN_ABS = 2n ** 63n;
const I64_MIN = -I64_MIN_ABS;
const I32_MAX = 2 ** 31 - 1;
/** 1e0..1e308, each the double nearest to it (`10 ** n` is not exact). */
const POW10 = Array.from({ length: 309 }, (_, n) => Number(`1e${n}`));

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const encoder = new TextEncoder();
const ESCAPES = { '"': 0x22, '\\': 0x5c, '/': 0x2f, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 };
const isDigit = (byte) => byte >= 0x30 && byte <= 0x39;
/** A quote, a backslash or a control character. */
const isStringEnd = (byte) => byte < 0x20 || byte === 0x22 || byte === 0x5c;
const charAt = (byte) => (byte === undefined ? undefined : String.fromCharCode(byte));

/**
 * Parses JSON text (UTF-8 bytes, or a string) into a value; throws a
 * `JsonError` worded as serde_json's (`expected value at line 1 column 1`).
 *
 * Valid JSON takes the native `JSON.parse` (a byte-by-byte loop is slow in
 * the plugin's interpreter); the rest, and what `JSON.parse` cannot give
 * exactly, goes to the byte parser below (`parseExact`).
 */
export function parse(text) {
  const bytes = typeof text === 'string' ? encoder.encode(text) : text;
  const value = SOURCE_TEXT ? parseNative(bytes) : UNEXPECTED;
  return value === UNEXPECTED ? parseExact(bytes) : value;
}

/** `parse` by serde_json's algorithm alone, byte by byte. */
export function parseExact(bytes) {
  const parser = new Parser(bytes);
  const value = parser.value();
  if (parser.whitespace() !== undefined) throw parser.peekError('trailing characters');
  return value;
}

/** serde_json's `Deserializer` over a byte slice, step for step. */
class Parser {
  constructor(bytes) {
    this.bytes = bytes;
    this.index = 0;
    this.depth = 128;
  }

  peek() {
    return charAt(this.bytes[this.index]);
  }

  next() {
    const c = this.peek();
    if (c !== undefined) this.index++;
    return c;
  }

  /** An error at the current position (after the byte just read). */
  error(message, at = this.index) {
    const { line, column } = this.position(at);
    return new JsonError(`${message} at line ${line} column ${column}`);
  }

  /** The 1-based line and the byte column of `at`. */
  position(at) {
    const lineStart = at === 0 ? 0 : this.bytes.lastIndexOf(0x0a, at - 1) + 1;
    let line = 1;
    for (let i = 0; i < lineStart; i++) if (this.bytes[i] === 0x0a) line++;
    return { line, column: at - lineStart };
  }

  /** An error at the byte peeked at. */
  peekError(message) {
    return this.error(message, Math.min(this.bytes.length, this.index + 1));
  }

  whitespace() {
    let c;
    while ((c = this.peek()) === ' ' || c === '\n' || c === '\t' || c === '\r') this.index++;
    return c;
  }

  value() {
    const c = this.whitespace();
    switch (c) {
      case undefined:
        throw this.peekError('EOF while parsing a value');
      case 'n':
        return this.ident('null', null);
      case 't':
        return this.ident('true', true);
      case 'f':
        return this.ident('false', false);
      case '-':
        this.index++;
        return this.number(false);
      case '"':
        this.index++;
        return this.string();
      case '[':
      case '{': {
        if (--this.depth === 0) throw this.peekError('recursion limit exceeded');
        this.index++;
        const value = c === '[' ? this.array() : this.object();
        this.depth++;
        this.index++; // the closing bracket
        return value;
      }
      default:
        if (isDigit(this.bytes[this.index])) return this.number(true);
        throw this.peekError('expected value');
    }
  }

  ident(word, value) {
    this.index++;
    for (const expected of word.slice(1)) {
      const c = this.next();
      if (c === undefined) throw this.error('EOF while parsing a value');
      if (c !== expected) throw this.error('expected ident');
    }
    return value;
  }

  array() {
    const items = [];
    for (let first = true; ; first = false) {
      const c = this.whitespace();
      if (c === undefined) throw this.peekError('EOF while parsing a list');
      if (c === ']') return items;
      if (!first) {
        if (c !== ',') throw this.peekError('expected `,` or `]`');
        this.index++;
        const after = this.whitespace();
        if (after === ']') throw this.peekError('trailing comma');
        if (after === undefined) throw this.peekError('EOF while parsing a value');
      }
      items.push(this.value());
    }
  }

  object() {
    const members = new Map();
    for (let first = true; ; first = false) {
      let c = this.whitespace();
      if (c === undefined) throw this.peekError('EOF while parsing an object');
      if (c === '}') return members;
      if (!first) {
        if (c !== ',') throw this.peekError('expected `,` or `}`');
        this.index++;
        c = this.whitespace();
        if (c === '}') throw this.peekError('trailing comma');
        if (c === undefined) throw this.peekError('EOF while parsing a value');
      }
      if (c !== '"') throw this.peekError('key must be a string');
      this.index++;
      const key = this.string();
      const colon = this.whitespace();
      if (colon === undefined) throw this.peekError('EOF while parsing an object');
      if (colon !== ':') throw this.peekError('expected `:`');
      this.index++;
      members.set(key, this.value());
    }
  }

  // Numbers: integers that fit u64 (or i64 when negative) stay exact;
  // everything else becomes an f64 from a u64 significand and a power of
  // ten, digits past the u64 dropped, as serde_json does without its
  // `float_roundtrip` feature.

  number(positive) {
    const c = this.next();
    if (c === undefined) throw this.error('EOF while parsing a value');
    if (c === '0') {
      if (isDigit(this.bytes[this.index])) throw this.peekError('invalid number');
      return this.integerEnd(positive, 0n);
    }
    if (!isDigit(c.charCodeAt(0))) throw this.error('invalid number');
    let significand = BigInt(c);
    for (let d; isDigit((d = this.bytes[this.index])); ) {
      const digit = BigInt(d - 0x30);
      if (overflows(significand, digit)) return this.longInteger(positive, significand);
      this.index++;
      significand = significand * 10n + digit;
    }
    return this.integerEnd(positive, significand);
  }

  integerEnd(positive, significand) {
    const c = this.peek();
    if (c === '.') return this.decimal(positive, significand, 0);
    if (c === 'e' || c === 'E') return this.exponent(positive, significand, 0);
    if (positive) return significand;
    // `-0` and what does not fit an i64 are floats.
    if (significand === 0n) return -0;
    return significand <= I64_MIN_ABS ? -significand : -Number(significand);
  }

  longInteger(positive, significand) {
    let exponent = 0;
    for (;;) {
      const c = this.peek();
      if (c === '.') return this.decimal(positive, significand, exponent);
      if (c === 'e' || c === 'E') return this.exponent(positive, significand, exponent);
      if (!isDigit(this.bytes[this.index])) return this.fromParts(positive, significand, exponent);
      this.index++;
      exponent++;
    }
  }

  decimal(positive, significand, exponentBefore) {
    this.index++;
    let exponentAfter = 0;
    for (let d; isDigit((d = this.bytes[this.index])); ) {
      const digit = BigInt(d - 0x30);
      if (overflows(significand, digit)) {
        // Further digits are ignored.
        while (isDigit(this.bytes[this.index])) this.index++;
        return this.exponentOrEnd(positive, significand, exponentBefore + exponentAfter);
      }
      this.index++;
      significand = significand * 10n + digit;
      exponentAfter--;
    }
    if (exponentAfter === 0) {
      throw this.peekError(this.peek() === undefined ? 'EOF while parsing a value' : 'invalid number');
    }
    return this.exponentOrEnd(positive, significand, exponentBefore + exponentAfter);
  }

  exponentOrEnd(positive, significand, exponent) {
    const c = this.peek();
    if (c === 'e' || c === 'E') return this.exponent(positive, significand, exponent);
    return this.fromParts(positive, significand, exponent);
  }

  exponent(positive, significand, startingExponent) {
    this.index++;
    let positiveExponent = true;
    const sign = this.peek();
    if (sign === '+' || sign === '-') {
      this.index++;
      positiveExponent = sign === '+';
    }
    const c = this.next();
    if (c === undefined) throw this.error('EOF while parsing a value');
    if (!isDigit(c.charCodeAt(0))) throw this.error('invalid number');
    let exponent = Number(c);
    for (let d; isDigit((d = this.bytes[this.index])); ) {
      this.index++;
      exponent = exponent * 10 + (d - 0x30);
      if (exponent > I32_MAX) {
        // Too large an exponent: an error, or zero.
        if (significand !== 0n && positiveExponent) throw this.error('number out of range');
        while (isDigit(this.bytes[this.index])) this.index++;
        return positive ? 0 : -0;
      }
    }
    const total = startingExponent + (positiveExponent ? exponent : -exponent);
    return this.fromParts(positive, significand, Math.max(-I32_MAX - 1, Math.min(I32_MAX, total)));
  }

  fromParts(positive, significand, exponent) {
    const f = scale(Number(significand), exponent);
    if (f === undefined) throw this.error('number out of range');
    return positive ? f : -f;
  }

  // Strings: the bytes between the quotes, escapes decoded, must be UTF-8.

  string() {
    const { bytes } = this;
    let start = this.index;
    let scratch; // the bytes so far, once there is an escape
    for (;;) {
      while (this.index < bytes.length && !isStringEnd(bytes[this.index])) this.index++;
      if (this.index === bytes.length) throw this.error('EOF while parsing a string');
      const c = this.next();
      if (c !== '"' && c !== '\\') {
        throw this.error('control character (\\u0000-\\u001F) found while parsing a string');
      }
      const run = bytes.subarray(start, this.index - 1);
      if (c === '"') return this.decode(scratch ? Uint8Array.from([...scratch, ...run]) : run);
      scratch ??= [];
      for (const b of run) scratch.push(b);
      this.escape(scratch);
      start = this.index;
    }
  }

  decode(content) {
    const valid = validUtf8Prefix(content);
    if (valid === content.length) return utf8.decode(content);
    // Point at the first invalid byte (approximately, after escapes).
    const { line, column } = this.position(this.index);
    const at = Math.max(0, column - (content.length - valid));
    throw new JsonError(`invalid unicode code point at line ${line} column ${at}`);
  }

  escape(scratch) {
    const c = this.next();
    if (c === undefined) throw this.error('EOF while parsing a string');
    if (Object.hasOwn(ESCAPES, c)) {
      scratch.push(ESCAPES[c]);
      return;
    }
    if (c !== 'u') throw this.error('invalid escape');
    const n = this.hex4();
    if (n >= 0xdc00 && n <= 0xdfff) throw this.error('lone leading surrogate in hex escape');
    let code = n;
    if (n >= 0xd800 && n <= 0xdbff) {
      for (const expected of ['\\', 'u']) {
        const next = this.peek();
        if (next === undefined) throw this.error('EOF while parsing a string');
        this.index++;
        if (next !== expected) throw this.error('unexpected end of hex escape');
      }
      const low = this.hex4();
      if (low < 0xdc00 || low > 0xdfff) throw this.error('lone leading surrogate in hex escape');
      code = ((n - 0xd800) << 10) + (low - 0xdc00) + 0x10000;
    }
    scratch.push(...encoder.encode(String.fromCodePoint(code)));
  }

  hex4() {
    if (this.index + 4 > this.bytes.length) {
      this.index = this.bytes.length;
      throw this.error('EOF while parsing a string');
    }
    const hex = String.fromCharCode(...this.bytes.subarray(this.index, this.index + 4));
    this.index += 4;
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.error('invalid escape');
    return parseInt(hex, 16);
  }
}

/**
 * `significand` times ten to the `exponent`, the way serde_json computes it
 * (one multiplication or division by a power of ten, so not always the
 * nearest double); `undefined` when out of range.
 */
function scale(significand, exponent) {
  let f = significand;
  for (;;) {
    const pow = POW10[Math.abs(exponent)];
    if (pow !== undefined) {
      f = exponent >= 0 ? f * pow : f / pow;
      return Number.isFinite(f) ? f : undefined;
    }
    if (f === 0) return f;
    if (exponent >= 0) return undefined;
    f /= 1e308;
    exponent += 308;
  }
}

/** Whether `significand * 10 + digit` overflows a u64. */
const overflows = (significand, digit) => significand * 10n + digit > U64_MAX;

/** How many of `bytes` form valid UTF-8 (Rust's `Utf8Error::valid_up_to`). */
function validUtf8Prefix(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let [length, low, high] = [0, 0x80, 0xbf];
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) [length, low, high] = [3, b === 0xe0 ? 0xa0 : 0x80, b === 0xed ? 0x9f : 0xbf];
    else if (b >= 0xf0 && b <= 0xf4) [length, low, high] = [4, b === 0xf0 ? 0x90 : 0x80, b === 0xf4 ? 0x8f : 0xbf];
    else return i;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      if (next === undefined || next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += length;
  }
  return i;
}

// The native path: `JSON.parse` with a reviver that reads each number
// from its source text (ES2025, which this runtime has) and makes objects
// `Map`s. It gives up (`UNEXPECTED`) on what serde_json refuses and
// `JSON.parse` accepts, and on objects whose key order `JSON.parse` loses.

const UNEXPECTED = Symbol('unexpected');
const giveUp = () => {
  throw UNEXPECTED;
};

/** Whether `JSON.parse` gives revivers the source text of numbers. */
const SOURCE_TEXT = JSON.parse('1.0', (key, value, context) => context?.source === '1.0');

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** How many times `c` occurs in `text` (natively: a regular expression is slow here). */
const count = (text, c) => (text.includes(c) ? text.split(c).length - 1 : 0);

function parseNative(bytes) {
  try {
    const text = strict.decode(bytes); // throws on invalid UTF-8
    // A `\u003a` in a string would spoil the count of colons below.
    if (text.includes('\\u003a') || text.includes('\\u003A')) return UNEXPECTED;
    const surrogates = text.includes('\\ud') || text.includes('\\uD'); // maybe unpaired
    // Depths matter only when there are enough brackets to nest 128 deep.
    const depths = count(text, '[') + count(text, '{') >= 128 ? new WeakMap() : undefined;
    let colons = 0; // one per member, plus those inside strings
    const string = (s) => {
      if (surrogates && !s.isWellFormed()) giveUp();
      colons += count(s, ':');
      return s;
    };
    const checkDepth = (value, children) => {
      let depth = 1;
      for (const child of children) {
        if (typeof child === 'object' && child !== null) depth = Math.max(depth, depths.get(child) + 1);
      }
      if (depth >= 128) giveUp(); // serde_json's recursion limit
      depths.set(value, depth);
    };
    const value = JSON.parse(text, (key, value, context) => {
      switch (typeof value) {
        case 'number':
          return numberFromSource(context.source, value);
        case 'string':
          return string(value);
        case 'object': {
          if (value === null) return value;
          if (Array.isArray(value)) {
            if (depths) checkDepth(value, value);
            return value;
          }
          const members = toMap(value, string);
          colons += members.size;
          if (depths) checkDepth(members, members.values());
          return members;
        }
      }
      return value;
    });
    // A value replaced by a repeated key never reaches the reviver, so what
    // serde_json refuses in it goes unchecked; the colons then do not add up.
    return colons === count(text, ':') ? value : UNEXPECTED;
  } catch {
    // Not JSON, or not read exactly by this path: the byte parser decides.
    return UNEXPECTED;
  }
}

/** The members of an object from `JSON.parse`, as a `Map` in their order; keys go through `key`. */
function toMap(object, key) {
  const keys = Object.keys(object);
  // `JSON.parse` puts integer-like keys first; they are listed first, so
  // checking the first key is enough.
  if (keys.length > 0 && isIntegerLike(keys[0])) giveUp();
  const members = new Map();
  for (const k of keys) members.set(key(k), object[k]);
  return members;
}

const isIntegerLike = (key) => isDigit(key.charCodeAt(0)) && String(Number(key)) === key;

/**
 * The value of a number token as serde_json reads it, from its source text
 * and `JSON.parse`'s value: an exact integer, or a float scaled from at most
 * 19 digits. Unusual numbers go to the byte parser.
 */
function numberFromSource(source, parsed) {
  // Plain integers, and short floats without an exponent: at most 15 digits
  // times a power of ten up to 1e15 is one rounding, as in `JSON.parse`.
  if (Number.isSafeInteger(parsed) && String(parsed) === source) return BigInt(parsed);
  const e = Math.max(source.indexOf('e'), source.indexOf('E'));
  if (source.length <= 15 && e < 0) return parsed; // `-0` included
  const dot = source.indexOf('.');
  const negative = source[0] === '-';
  if (e < 0 && dot < 0 && source.length - (negative ? 1 : 0) <= 19) {
    const integer = BigInt(source);
    // What does not fit an i64 is a float.
    return integer < I64_MIN ? Number(integer) : integer;
  }
  const mantissa = e < 0 ? source : source.slice(0, e);
  const integer = mantissa.slice(negative ? 1 : 0, dot < 0 ? undefined : dot);
  const fraction = dot < 0 ? '' : mantissa.slice(dot + 1);
  const exponent = e < 0 ? 0 : Number(source.slice(e + 1));
  const digits = integer + fraction;
  if (digits.length > 19 || Math.abs(exponent) > 100000) return new Parser(encoder.encode(source)).value();
  // At most 19 digits: the significand fits a u64, as serde_json keeps it.
  const significand = digits.length <= 15 ? Number(digits) : Number(BigInt(digits));
  const f = scale(significand, exponent - fraction.length) ?? giveUp(); // out of range
  return negative ? -f : f;
}

// ---------------------------------------------------------------- writing

/** Compact JSON text of `value`, byte for byte as serde_json writes it. */
export function stringify(value) {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value); // the same escapes as serde_json
    case 'bigint':
      return String(value);
    case 'number':
      return formatFloat(value);
    case 'boolean':
      return String(value);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(stringify).join(',')}]`;
  if (value instanceof Map) {
    return `{${Array.from(value, ([k, v]) => `${JSON.stringify(k)}:${stringify(v)}`).join(',')}}`;
  }
  throw new TypeError(`not a JSON value: ${value}`);
}

/** The shortest digits of `f` and its decimal exponent: 1250 is ['125', 3]. */
function decimal(f) {
  const [mantissa, exponent] = Math.abs(f).toExponential().split('e');
  return [mantissa.replace('.', ''), Number(exponent)];
}

/**
 * An f64 as serde_json writes it: the shortest digits that read back the
 * same, positional from 1e-5 to below 1e16 (always with a `.`), otherwise
 * `1.5e-7` or `1e+16`.
 */
function formatFloat(f) {
  if (!Number.isFinite(f)) return 'null';
  if (f === 0) return Object.is(f, -0) ? '-0.0' : '0.0';
  const [digits, exponent] = decimal(f);
  const sign = f < 0 ? '-' : '';
  if (exponent < -5 || exponent > 15) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
    return `${sign}${digits[0]}${fraction}e${exponent < 0 ? '-' : '+'}${Math.abs(exponent)}`;
  }
  return sign + positional(digits, exponent);
}

/** Digits laid out without an exponent, always with a `.`: `1250.0`, `0.001`. */
function positional(digits, exponent) {
  if (exponent < 0) return `0.${'0'.repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return `${digits.padEnd(exponent + 1, '0')}.0`;
  return `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

// ---------------------------------------------------------------- pointers

/** The unescaped tokens of an RFC 6901 pointer, or `undefined` if it is not one. */
export function pointerTokens(text) {
  if (!text.startsWith('/')) return undefined;
  return text.slice(1).split('/').map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The member or element `token` names in `container`, or `undefined`. */
export function child(container, token) {
  if (container instanceof Map) return container.get(token);
  if (Array.isArray(container)) {
    // Decimal digits, no leading zero, no sign.
    return /^(0|[1-9][0-9]*)$/.test(token) ? container[Number(token)] : undefined;
  }
  return undefined;
}

/** The value `text` names in `value`, or `undefined`: serde_json's `Value::pointer`. */
export function pointer(value, text) {
  if (text === '') return value;
  return pointerTokens(text)?.reduce((current, token) => child(current, token), value);
}

// ---------------------------------------------------------------- reading configs like serde

/** `text` as Rust's `{:?}` prints a string: quoted, with escapes. */
export function debug(text) {
  let out = '"';
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c in DEBUG_ESCAPES) out += DEBUG_ESCAPES[c];
    else if (unprintable(code)) out += `\\u{${code.toString(16)}}`;
    else out += c;
  }
  return `${out}"`;
}

const DEBUG_ESCAPES = { '\0': '\\0', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * Characters Rust escapes in `{:?}`: controls, format characters, spaces
 * other than ' ', combining marks, private use. (Rust asks the Unicode
 * tables, which this runtime lacks; this covers the common ones.)
 */
const UNPRINTABLE = [
  [0x00, 0x1f], [0x7f, 0xa0], [0xad, 0xad], [0x300, 0x36f], [0x483, 0x489], [0x591, 0x5bd],
  [0x600, 0x605], [0x61c, 0x61c], [0x6dd, 0x6dd], [0x70f, 0x70f], [0x1680, 0x1680],
  [0x180e, 0x180e], [0x1ab0, 0x1aff], [0x1dc0, 0x1dff], [0x2000, 0x200f], [0x2028, 0x202f],
  [0x205f, 0x206f], [0x20d0, 0x20ff], [0x3000, 0x3000], [0xd800, 0xf8ff], [0xfe00, 0xfe0f],
  [0xfe20, 0xfe2f], [0xfeff, 0xfeff], [0xfff9, 0xfffb], [0xe0000, 0xe0fff], [0xf0000, 0x10ffff],
];
const unprintable = (code) => UNPRINTABLE.some(([low, high]) => code >= low && code <= high);

/**
 * How serde_json names a value it did not expect: `integer \`5\``,
 * `floating point \`1.5e-7\`` (written as in JSON), `string "x"`, `map`.
 */
export function unexpected(value) {
  switch (typeof value) {
    case 'boolean':
      return `boolean \`${value}\``;
    case 'bigint':
      return `integer \`${value}\``;
    case 'number':
      return `floating point \`${formatFloat(value)}\``;
    case 'string':
      return `string ${debug(value)}`;
  }
  if (value === null) return 'null';
  return Array.isArray(value) ? 'sequence' : 'map';
}

/** serde's `invalid type: ..., expected ...` error. */
export const invalidType = (value, expected) =>
  new JsonError(`invalid type: ${unexpected(value)}, expected ${expected}`);

/**
 * Reads the config with `reader` (such as a `readStruct`); a mismatch is an
 * `invalid-config` error `config: ...`, as the SDK's `Target::parse_config`.
 */
export const parseConfig = (config, reader) => readAs(config, reader, invalidConfig, 'config');

/**
 * Reads the event's data with `reader`; a mismatch is an `invalid-event`
 * error `data: ...`, as the SDK's `Event::parse_data`.
 */
export const parseData = (data, reader) => readAs(data, reader, invalidEvent, 'data');

function readAs(value, reader, as, what) {
  try {
    return reader(value);
  } catch (e) {
    if (e instanceof JsonError) throw as(`${what}: ${e.message}`);
    throw e;
  }
}

/** Readers of one value each, as serde's `Deserialize` of a Rust type. */
export const read = {
  string(value) {
    if (typeof value !== 'string') throw invalidType(value, 'a string');
    return value;
  },
  bool(value) {
    if (typeof value !== 'boolean') throw invalidType(value, 'a boolean');
    return value;
  },
  /** An integer in `min..=max` (bigints), named `type` (`u32`, `i64`), as a bigint. */
  integer(type, min, max) {
    return (value) => {
      if (typeof value !== 'bigint') throw invalidType(value, type);
      if (value < min || value > max) throw new JsonError(`invalid value: integer \`${value}\`, expected ${type}`);
      return value;
    };
  },
  /** `Option<T>`: `null` is `undefined`. */
  option(readValue) {
    return (value) => (value === null ? undefined : readValue(value));
  },
  /** `Vec<T>`. */
  list(readItem) {
    return (value) => {
      if (!Array.isArray(value)) throw invalidType(value, 'a sequence');
      return value.map(readItem);
    };
  },
  /** A map with string keys, as a `Map`. */
  map(value) {
    if (!(value instanceof Map)) throw invalidType(value, 'a map');
    return value;
  },
};
/** `u32`, as a number. */
read.u32 = (value) => Number(read.integer('u32', 0n, 2n ** 32n - 1n)(value));
/** `i64`, as a bigint. */
read.i64 = read.integer('i64', -(2n ** 63n), 2n ** 63n - 1n);

/**
 * Reads `value` as serde's derived `Deserialize` reads the struct `name`
 * with `#[serde(deny_unknown_fields)]`: an object of the fields, or an array
 * of them in order. `fields` maps each field to `[read, fallback]`: the
 * fallback (a function) gives the value of a missing field; without one the
 * field is required. With `rest`, unknown fields are collected into
 * `result.rest` instead (`#[serde(flatten)]`) and arrays are refused.
 */
export function readStruct(value, name, fields, { rest = false } = {}) {
  const names = Object.keys(fields);
  const result = {};
  if (Array.isArray(value) && !rest) {
    names.forEach((field, i) => {
      const [readValue, fallback] = fields[field];
      if (i < value.length) result[field] = readValue(value[i]);
      else if (fallback) result[field] = fallback();
      else throw new JsonError(`invalid length ${i}, expected struct ${name} with ${names.length} elements`);
    });
    if (value.length > names.length) {
      throw new JsonError(`invalid length ${value.length}, expected fewer elements in array`);
    }
    return result;
  }
  if (!(value instanceof Map)) throw invalidType(value, `struct ${name}`);
  if (rest) result.rest = new Map();
  for (const [key, member] of value) {
    if (Object.hasOwn(fields, key)) result[key] = fields[key][0](member);
    else if (rest) result.rest.set(key, member);
    else throw new JsonError(`unknown field \`${key}\`, expected ${oneOf(names)}`);
  }
  for (const field of names) {
    if (Object.hasOwn(result, field)) continue;
    const fallback = fields[field][1];
    if (!fallback) throw new JsonError(`missing field \`${field}\``);
    result[field] = fallback();
  }
  return result;
}

/** serde's list of expected names: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``. */
function oneOf(names) {
  const quoted = names.map((n) => `\`${n}\``);
  if (quoted.length <= 2) return quoted.join(' or ');
  return `one of ${quoted.join(', ')}`;
}
