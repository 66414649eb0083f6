// Tests of sdk.js, the JSON layer every JavaScript example shares: it must
// read and write what serde_json does (the Rust SDK). Run with
// `node --test plugins/sdk-js/`; on Node 20 add
// `--harmony-json-parse-with-source` to test the native path the component
// takes (without it, `parse` is the byte parser alone).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { debug, JsonError, parse, parseExact, pointer, read, readStruct, stringify } from './sdk.js';

const roundTrip = (text) => stringify(parse(text));
const parseError = (text) => {
  try {
    parse(typeof text === 'string' ? text : new Uint8Array(text));
  } catch (e) {
    assert.ok(e instanceof JsonError);
    return e.message;
  }
  assert.fail(`${text} parsed`);
};

test('objects keep their key order, integer-like keys too', () => {
  assert.equal(roundTrip('{"b": 1, "1": 2, "a": {"__proto__": 3}}'), '{"b":1,"1":2,"a":{"__proto__":3}}');
  // A repeated key keeps its first place and its last value, as serde_json.
  assert.equal(roundTrip('{"a": 1, "b": 2, "a": 3}'), '{"a":3,"b":2}');
});

test('integers are exact, floats are written as serde_json writes them', () => {
  assert.equal(roundTrip('[18446744073709551615, -9223372036854775808, 9007199254740993]'),
    '[18446744073709551615,-9223372036854775808,9007199254740993]');
  assert.equal(roundTrip('[1.0, 1.50, 1e2, -0, -0.0, 0.1, 1e15, 1e16, 1e-5, 1e-6, 1.5e-7, 5e-324]'),
    '[1.0,1.5,100.0,-0.0,-0.0,0.1,1000000000000000.0,1e+16,0.00001,1e-6,1.5e-7,5e-324]');
  // Past u64 an integer is a float; serde_json drops the digits past the
  // u64 and scales by a power of ten, which is not always the nearest double.
  assert.equal(roundTrip('[18446744073709551616, -9223372036854775809]'), '[1.8446744073709552e+19,-9.223372036854776e+18]');
  assert.equal(roundTrip('123456789012345678901234'), '1.2345678901234567e+23');
  assert.equal(roundTrip('[1e-400, -1e-400, 0e99999999999]'), '[0.0,-0.0,0.0]');
});

test('strings are escaped as serde_json escapes them', () => {
  assert.equal(roundTrip('"\\u00e9\\ud83d\\ude00 \\u0001\\u001f\\u007f\\/\\b\\f\\n\\r\\t\\"\\\\ \ufeff"'),
    '"é😀 \\u0001\\u001f\u007f/\\b\\f\\n\\r\\t\\"\\\\ \ufeff"');
});

test('what serde_json refuses is refused with its message', () => {
  for (const [text, message] of [
    ['', 'EOF while parsing a value at line 1 column 0'],
    ['x', 'expected value at line 1 column 1'],
    ['{"a": 1,}', 'trailing comma at line 1 column 9'],
    ['[1 2]', 'expected `,` or `]` at line 1 column 4'],
    ['{"a" 1}', 'expected `:` at line 1 column 6'],
    ['{1: 2}', 'key must be a string at line 1 column 2'],
    ['{"a": 1}\n x', 'trailing characters at line 2 column 2'],
    ['01', 'invalid number at line 1 column 2'],
    ['1.', 'EOF while parsing a value at line 1 column 2'],
    ['1e400', 'number out of range at line 1 column 5'],
    ['nul', 'EOF while parsing a value at line 1 column 3'],
    ['"\\ud83d"', 'unexpected end of hex escape at line 1 column 8'],
    ['"\\ude00"', 'lone leading surrogate in hex escape at line 1 column 7'],
    ['"\\x"', 'invalid escape at line 1 column 3'],
    ['"a\tb"', 'control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3'],
    ['"abc', 'EOF while parsing a string at line 1 column 4'],
    ['['.repeat(128) + ']'.repeat(128), 'recursion limit exceeded at line 1 column 128'],
  ]) {
    assert.equal(parseError(text), message, JSON.stringify(text));
  }
  assert.equal(roundTrip('['.repeat(127) + ']'.repeat(127)), '['.repeat(127) + ']'.repeat(127));
  // Also in a value a repeated key replaces (which JSON.parse's reviver never sees).
  assert.equal(parseError('{"a": 1e400, "a": 1}'), 'number out of range at line 1 column 11');
  assert.equal(parseError('{"a": "\\ud800", "a": 1}'), 'unexpected end of hex escape at line 1 column 14');
  assert.equal(parseError([0x22, 0x61, 0xff, 0x22]), 'invalid unicode code point at line 1 column 3');
});

test('the native path reads what the byte parser reads', () => {
  const texts = [
    '{"a": [1, -2, 1.5, 1e2, -0, 18446744073709551615, 18446744073709551616, -9223372036854775809, 1e-400]}',
    '{"s": "\\u00e9\\ud83d\\ude00\\n", "__proto__": {"x": null}, "a": 1, "a": {"b": true}}',
    '{"b": 1, "10": 2, "a": 3}',
    `[${'1.2345678901234567891e-7,'.repeat(3)}123456789012345678901234]`,
  ];
  for (const text of texts) assert.equal(stringify(parse(text)), stringify(parseExact(new TextEncoder().encode(text))), text);
});

test('pointers follow serde_json: objects by name, arrays by canonical index', () => {
  const data = parse('{"a/b": {"c~d": [10, 20]}, "": 1}');
  assert.equal(pointer(data, '/a~1b/c~0d/1'), 20n);
  assert.equal(pointer(data, '/'), 1n);
  assert.equal(pointer(data, ''), data);
  for (const text of ['/a~1b/c~0d/01', '/a~1b/c~0d/2', '/a~1b/c~0d/-', 'a', '/x/y']) {
    assert.equal(pointer(data, text), undefined, text);
  }
});

test('structs read as serde reads them, with its errors', () => {
  const fields = { name: [read.string], count: [read.u32, () => 0] };
  const readThing = (text) => readStruct(parse(text), 'Thing', fields);
  assert.deepEqual(readThing('{"name": "x"}'), { name: 'x', count: 0 });
  assert.deepEqual(readThing('["x", 2]'), { name: 'x', count: 2 });
  for (const [text, message] of [
    ['{"count": 1}', 'missing field `name`'],
    ['{"name": "x", "other": 1}', 'unknown field `other`, expected `name` or `count`'],
    ['{"name": 1.0}', 'invalid type: floating point `1.0`, expected a string'],
    ['{"name": "x", "count": -1}', 'invalid value: integer `-1`, expected u32'],
    ['{"name": "x", "count": "2"}', 'invalid type: string "2", expected u32'],
    ['[]', 'invalid length 0, expected struct Thing with 2 elements'],
    ['["x", 1, 2]', 'invalid length 3, expected fewer elements in array'],
    ['null', 'invalid type: null, expected struct Thing'],
  ]) {
    assert.throws(() => readThing(text), { message }, text);
  }
});

test("strings print as Rust's {:?}", () => {
  assert.equal(debug('a"b\\c\n\t\0\u0001é'), '"a\\"b\\\\c\\n\\t\\0\\u{1}é"');
});
