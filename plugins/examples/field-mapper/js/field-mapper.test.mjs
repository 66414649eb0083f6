// The Rust example's unit tests (lib.rs, mapping.rs, pointer.rs), on the
// JavaScript port. Run with `node --test plugins/examples/*/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { handle } from './lib.js';
import { readMove, readPointer, readSets, rewrite } from './mapping.js';
import { Pointer } from './pointer.js';
import { invalidConfig, invalidEvent, JsonError, parse, read, readStruct, stringify } from '../../../sdk-js/sdk.js';

// pointer.js

const p = (text) => Pointer.parse(text);

test('parses and prints escapes', () => {
  const pointer = p('/a~1b/c~0d/');
  assert.deepEqual(pointer.parents, ['a/b', 'c~d']);
  assert.equal(pointer.last, '');
  assert.equal(String(pointer), '/a~1b/c~0d/');
  assert.equal(p('/~01').last, '~1');
  assert.deepEqual(p('/~01').parents, []);
});

test('refuses the root, relative pointers and bad escapes', () => {
  for (const [text, expected] of [
    ['', 'must start with `/`'],
    ['amount', 'must start with `/`'],
    ['/a~2', '`~` not followed by `0` or `1`'],
    ['/a~', '`~` not followed by `0` or `1`'],
  ]) {
    assert.throws(() => Pointer.parse(text), (e) => e instanceof JsonError && e.message.includes(expected), text);
  }
});

test('take removes members keeping the order of the rest', () => {
  const data = parse('{"a": 1, "b": {"c": 2, "d": 3}, "e": 4}');
  assert.equal(p('/b/c').take(data), 2n);
  assert.equal(p('/a').take(data), 1n);
  assert.equal(stringify(data), '{"b":{"d":3},"e":4}');
});

test('take finds nothing on missing paths', () => {
  const original = '{"a":"text","list":[1,2]}';
  const data = parse(original);
  for (const text of ['/x', '/x/y', '/a/b', '/list/2', '/list/-', '/list/01', '/list/x']) {
    assert.equal(p(text).take(data), undefined, text);
  }
  assert.equal(stringify(data), original);
});

test('take and insert reach into existing arrays', () => {
  const data = parse('{"items": [{"sku": "A1"}, {"sku": "B2"}, 3]}');
  assert.equal(p('/items/0/sku').take(data), 'A1');
  p('/items/0/code').insert(data, 'A1');
  p('/items/2').insert(data, 4n);
  assert.equal(stringify(p('/items/1').take(data)), '{"sku":"B2"}');
  assert.equal(stringify(data), '{"items":[{"code":"A1"},4]}');
});

test('insert creates parents and replaces in place', () => {
  const data = parse('{"a": 1, "b": 2}');
  p('/x/y/z').insert(data, true);
  p('/a').insert(data, 'one');
  assert.equal(stringify(data), '{"a":"one","b":2,"x":{"y":{"z":true}}}');
});

test('insert through a non-object names the place', () => {
  const data = parse('{"total": 5, "items": [1], "n": null}');
  for (const [text, expected] of [
    ['/total/scale', '/total is a number, not an object'],
    ['/n/x/y', '/n is null, not an object'],
    ['/items/1', '/items is an array of 1 and "1" is not one of its indexes'],
    ['/items/-/x', '/items is an array of 1 and "-" is not one of its indexes'],
  ]) {
    assert.throws(() => p(text).insert(data, 0n), { message: expected }, text);
  }
  assert.throws(() => p('/a~1b').insert('plain', 0n), { message: 'the data is a string, not an object' });
});

// mapping.js

/** Runs the `moves`, `remove` and `set` of `config` (JSON text) on `data` (JSON text). */
function run(config, data) {
  const steps = readStruct(parse(config), 'Steps', {
    moves: [read.list(readMove), () => []],
    remove: [read.list(readPointer), () => []],
    set: [readSets, () => []],
  });
  const value = parse(data);
  const counts = rewrite(value, steps.moves, steps.remove, steps.set);
  return [stringify(value), counts];
}

test('moves then removes then sets', () => {
  const config = `{
    "moves": [
      {"from": "/amount/value", "to": "/total/minor_units"},
      {"from": "/missing", "to": "/elsewhere"}
    ],
    "remove": ["/amount", "/legacy", "/not/there"],
    "set": {"/total/scale": 2, "/total/minor_units": 0, "/meta/source": "v2"}
  }`;
  const [data, counts] = run(config, '{"amount": {"value": 1250}, "legacy": true, "order_id": "ord_1"}');
  assert.equal(data, '{"order_id":"ord_1","total":{"minor_units":0,"scale":2},"meta":{"source":"v2"}}');
  assert.deepEqual(counts, { moved: 1, skipped: 1, removed: 2, set: 3 });
});

test('moves run in order and may nest under their source', () => {
  const config = '{"moves": [{"from": "/a", "to": "/a/inner"}, {"from": "/a/inner/x", "to": "/x"}]}';
  assert.equal(run(config, '{"a": {"x": 1, "y": 2}}')[0], '{"a":{"inner":{"y":2}},"x":1}');
});

test('a required move with nothing to move is an error', () => {
  const config = '{"moves": [{"from": "/amount/value", "to": "/total", "required": true}]}';
  assert.throws(
    () => run(config, '{"amount": {}}'),
    invalidEvent('move /amount/value to /total: the data has no /amount/value'),
  );
});

test('writing through a non-object names the step and place', () => {
  assert.throws(
    () => run('{"set": {"/total/scale": 2}}', '{"total": 1250}'),
    invalidEvent('set /total/scale: /total is a number, not an object'),
  );
  assert.throws(
    () => run('{"moves": [{"from": "/a", "to": "/b/c~1d"}]}', '{"a": 1, "b": "x"}'),
    invalidEvent('move /a to /b/c~1d: /b is a string, not an object'),
  );
});

test('bad pointers and keys are refused', () => {
  for (const [config, expected] of [
    ['{"moves": [{"from": "a", "to": "/b"}]}', 'pointer "a" must start with `/`'],
    ['{"moves": [{"from": "/a", "to": "/b", "optional": true}]}', 'unknown field `optional`'],
    ['{"moves": [{"from": "/a"}]}', 'missing field `to`'],
    ['{"remove": ["/a~"]}', 'pointer "/a~" has a `~` not followed by `0` or `1`'],
    ['{"set": {"total": 1}}', 'pointer "total" must start with `/`'],
  ]) {
    assert.throws(() => run(config, '{}'), (e) => e instanceof JsonError && e.message.includes(expected), config);
  }
});

// lib.js

/** `order.created` v2, as in schema-upgrade's README. */
const V2 =
  '{"order_id":"ord_1","items":[{"sku":"A1","qty":2}],' +
  '"customer":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"},' +
  '"amount":{"value":1250,"currency":"GBP"}}';

/** The README's v2 → v3 config. */
const V2_TO_V3 = `{
  "event_type": "order.created",
  "from_version": 2,
  "to_version": 3,
  "moves": [
    {"from": "/amount/value", "to": "/total/minor_units", "required": true},
    {"from": "/amount/currency", "to": "/total/currency", "required": true}
  ],
  "remove": ["/amount"]
}`;

const event = (schemaVersion, data, eventType = 'order.created') => ({
  id: '',
  eventType,
  schemaVersion,
  timestamp: '',
  data: parse(data),
  metadata: [],
});
const target = (schemaVersion, config) => ({ endpointId: '', schemaVersion, config: parse(config) });

function deliver(event, target) {
  const verdict = handle(event, target);
  assert.equal(verdict.tag, 'deliver');
  return verdict.val;
}

test('maps v2 to v3 and back', () => {
  const v3 = deliver(event(2, V2), target(3, V2_TO_V3));
  assert.equal(v3.schemaVersion, 3);
  assert.equal(
    stringify(v3.data),
    '{"order_id":"ord_1","items":[{"sku":"A1","qty":2}],' +
      '"customer":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"},' +
      '"total":{"minor_units":1250,"currency":"GBP"}}',
  );
  const v3ToV2 = `{
    "event_type": "order.created",
    "from_version": 3,
    "moves": [
      {"from": "/total/minor_units", "to": "/amount/value", "required": true},
      {"from": "/total/currency", "to": "/amount/currency", "required": true}
    ],
    "remove": ["/total"]
  }`;
  const back = deliver(v3, target(2, v3ToV2));
  assert.equal(back.schemaVersion, 2);
  assert.equal(stringify(back.data), V2);
});

test('maps v2 down to v1 as far as pointers go', () => {
  const v2ToV1 = `{
    "event_type": "order.created",
    "from_version": 2,
    "to_version": 1,
    "moves": [
      {"from": "/amount/value", "to": "/amount_cents", "required": true},
      {"from": "/amount/currency", "to": "/currency"},
      {"from": "/customer/email", "to": "/customer_email"}
    ],
    "remove": ["/amount"]
  }`;
  const v1 = deliver(event(2, V2), target(undefined, v2ToV1));
  assert.equal(v1.schemaVersion, 1);
  assert.equal(
    stringify(v1.data),
    '{"order_id":"ord_1","items":[{"sku":"A1","qty":2}],"customer":{"first_name":"Ada","last_name":"Lovelace"},' +
      '"amount_cents":1250,"currency":"GBP","customer_email":"ada@example.com"}',
  );
});

test("the version written is the config's, the endpoint's or unchanged", () => {
  assert.equal(deliver(event(2, V2), target(undefined, '{"to_version": 3}')).schemaVersion, 3);
  assert.equal(deliver(event(2, V2), target(3, '{"to_version": 3}')).schemaVersion, 3);
  assert.equal(deliver(event(2, V2), target(4, '{}')).schemaVersion, 4);
  const unchanged = deliver(event(2, V2), target(undefined, '{}'));
  assert.equal(unchanged.schemaVersion, 2);
  assert.equal(stringify(unchanged.data), V2);
  assert.equal(deliver(event(undefined, V2), target(undefined, '{}')).schemaVersion, undefined);
});

test("a to_version other than the endpoint's is invalid config", () => {
  assert.throws(
    () => handle(event(2, V2), target(4, V2_TO_V3)),
    invalidConfig('config: `to_version` is 3, but the endpoint wants v4'),
  );
});

test('other event types and versions are invalid events', () => {
  for (const [e, expected] of [
    [event(2, V2, 'order.paid'), 'expected a order.created event, got order.paid'],
    [event(1, V2), 'expected schema version 2, got 1'],
    [event(undefined, V2), 'expected schema version 2, got none'],
  ]) {
    assert.throws(() => handle(e, target(3, V2_TO_V3)), invalidEvent(expected));
  }
});

test('data the mapping cannot apply to is an invalid event', () => {
  assert.throws(
    () => handle(event(2, '{"order_id": "ord_1"}'), target(3, V2_TO_V3)),
    invalidEvent('move /amount/value to /total/minor_units: the data has no /amount/value'),
  );
  assert.throws(
    () => handle(event(3, '{"total": 1250}'), target(undefined, '{"set": {"/total/scale": 2}}')),
    invalidEvent('set /total/scale: /total is a number, not an object'),
  );
});

test('bad config is invalid config', () => {
  for (const config of [
    '{"moves": [{"from": "amount", "to": "/total"}]}',
    '{"remove": "/amount"}',
    '{"set": {"/a~9": 1}}',
    '{"to_version": -1}',
    '{"rename": {}}',
    '["order.created", 2, 3]',
  ]) {
    assert.throws(() => handle(event(2, V2), target(undefined, config)), { tag: 'invalid-config' }, config);
  }
});

test('the log counts the steps', () => {
  const lines = [];
  handle(event(2, V2), target(3, V2_TO_V3), (level, message) => lines.push(`[${level}] ${message}`));
  assert.deepEqual(lines, ['[debug] moved 2 (skipped 0 missing), removed 1, set 0']);
});
