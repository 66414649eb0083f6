// The Rust example's unit tests (condition.rs, parse.rs, lib.rs), on the
// JavaScript port. Run with `node --test plugins/examples/*/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { check } from './condition.js';
import { handle } from './lib.js';
import { parseCondition } from './parse.js';
import { drop, parse, stringify } from '../../../sdk-js/sdk.js';

/** A test condition `pointer op value`, the value given as JSON text. */
const condition = (pointer, op, value) =>
  parseCondition(parse(`{"pointer": ${JSON.stringify(pointer)}, "op": "${op}", "value": ${value}}`));

const holds = (c, data) => check(c, parse(data)) === undefined;

test('eq and ne compare numbers by value', () => {
  assert.ok(holds(condition('/a', 'eq', '1'), '{"a": 1.0}'));
  assert.ok(holds(condition('/a', 'eq', '{"b": [1]}'), '{"a": {"b": [1.0]}}'));
  assert.ok(!holds(condition('/a', 'eq', '"1"'), '{"a": 1}'));
  assert.ok(holds(condition('/a', 'ne', '"NL"'), '{"a": "DE"}'));
  assert.ok(!holds(condition('/a', 'ne', '"NL"'), '{"a": "NL"}'));
});

test('ordering ops compare numbers and strings only', () => {
  const data = '{"n": 100, "t": "2026-01-31T12:00:00Z", "s": true}';
  assert.ok(holds(condition('/n', 'gt', '99.5'), data));
  assert.ok(!holds(condition('/n', 'gt', '100'), data));
  assert.ok(holds(condition('/n', 'gte', '100'), data));
  assert.ok(holds(condition('/n', 'lt', '101'), data));
  assert.ok(holds(condition('/n', 'lte', '100'), data));
  assert.ok(holds(condition('/t', 'lt', '"2026-02-01"'), data));
  assert.ok(!holds(condition('/n', 'gt', '"5"'), data));
  assert.ok(!holds(condition('/s', 'lt', '5'), data));
});

test('strings order by code point, as in Rust', () => {
  // U+FF61 is one UTF-16 unit, U+1F600 two (starting 0xD83D): JavaScript's
  // `<` puts the emoji first, Rust (and this port) after.
  assert.ok(holds(condition('/s', 'gt', '"\uff61"'), '{"s": "😀"}'));
});

test('exists and contains', () => {
  const data = '{"a": {"b": null}, "tags": ["x", 2], "s": "hello"}';
  assert.ok(holds(condition('/a/b', 'exists', 'true'), data));
  assert.ok(holds(condition('/a/c', 'exists', 'false'), data));
  assert.ok(holds(parseCondition(parse('{"pointer": "/tags", "op": "exists"}')), data));
  assert.ok(holds(condition('/tags', 'contains', '2.0'), data));
  assert.ok(holds(condition('/s', 'contains', '"ell"'), data));
  assert.ok(!holds(condition('/s', 'contains', '"xyz"'), data));
  assert.ok(!holds(condition('/a', 'contains', '"b"'), data));
});

test('missing values fail every test but ne', () => {
  for (const op of ['eq', 'gt', 'gte', 'lt', 'lte', 'contains']) {
    assert.ok(!holds(condition('/missing', op, '1'), '{}'), op);
  }
  assert.ok(holds(condition('/missing', 'ne', '1'), '{}'));
  assert.ok(!holds(condition('/missing', 'exists', 'true'), '{}'));
});

test('all names the first failed test', () => {
  const c = parseCondition(parse(`{"all": [
    {"pointer": "/amount", "op": "gt", "value": 100},
    {"pointer": "/country", "op": "eq", "value": "NL"}
  ]}`));
  assert.equal(check(c, parse('{"amount": 101, "country": "NL"}')), undefined);
  assert.equal(check(c, parse('{"amount": 5, "country": "DE"}')), '/amount gt 100 failed (found 5)');
  assert.equal(check(c, parse('{"amount": 500}')), '/country eq "NL" failed (found nothing)');
});

test('any lists every failed test and groups nest', () => {
  const c = parseCondition(parse(`{"any": [
    {"pointer": "/vip", "op": "eq", "value": true},
    {"all": [
      {"pointer": "/amount", "op": "gte", "value": 10},
      {"pointer": "/currency", "op": "eq", "value": "EUR"}
    ]}
  ]}`));
  assert.ok(holds(c, '{"vip": true}'));
  assert.ok(holds(c, '{"amount": 10, "currency": "EUR"}'));
  assert.equal(
    check(c, parse('{"amount": 10, "currency": "USD"}')),
    'none of [/vip eq true failed (found nothing); /currency eq "EUR" failed (found "USD")]',
  );
});

test('long found values are cut, by characters', () => {
  const reason = check(condition('/s', 'eq', '"y"'), parse(`{"s": "${'x'.repeat(500)}"}`));
  assert.match(reason, /\.\.\.\)$/);
  assert.ok(reason.length < 120, reason);
  // 63 emoji after the quote: the cut falls between two, not inside one.
  const emoji = check(condition('/s', 'eq', '"y"'), parse(`{"s": "${'😀'.repeat(100)}"}`));
  assert.equal(emoji, `/s eq "y" failed (found "${'😀'.repeat(63)}...)`);
});

test('floats in reasons are written as serde_json writes them', () => {
  assert.equal(check(condition('/n', 'gt', '100.0'), parse('{"n": 1e2}')), '/n gt 100.0 failed (found 100.0)');
});

test('parse errors point into the config', () => {
  const cases = [
    ['[]', 'config: expected an object'],
    ['{}', 'config: missing `pointer`'],
    ['{"all": []}', 'config: `all` needs at least one condition'],
    ['{"all": {}}', 'config: `all` must be a list'],
    ['{"all": [{"pointer": "/a", "op": "eq", "value": 1}], "x": 1}', 'config: `all` must be the only key'],
    ['{"any": [{"pointer": "a", "op": "eq", "value": 1}]}', 'config at /any/0: pointer "a"'],
    ['{"all": [{"all": [{"pointer": "/a", "op": "like", "value": 1}]}]}', 'config at /all/0/all/0: unknown op "like"'],
    ['{"pointer": "/a", "op": "gt", "value": [1]}', 'config: ordering ops take'],
    ['{"pointer": "/a", "op": "exists", "value": 1}', 'config: `exists` takes a boolean'],
    ['{"pointer": "/a", "op": "eq"}', 'config: missing `value`'],
    ['{"pointer": "/a", "op": "eq", "value": 1, "extra": 2}', 'config: unknown key `extra`'],
  ];
  for (const [config, expected] of cases) {
    assert.throws(() => parseCondition(parse(config)), (e) => {
      assert.equal(e.tag, 'invalid-config');
      assert.ok(e.val.startsWith(expected), `${config}: ${e.val}`);
      return true;
    });
  }
});

test('unknown ops list the known ones', () => {
  assert.throws(() => parseCondition(parse('{"all": [{"pointer": "/a", "op": "gtx", "value": 1}]}')), {
    tag: 'invalid-config',
    val: 'config at /all/0: unknown op "gtx" (expected one of eq, ne, gt, gte, lt, lte, exists, contains)',
  });
});

const event = (data) => ({ id: '', eventType: 'order.created', timestamp: '', data: parse(data), metadata: [] });
const run = (config, data) => handle(event(data), { endpointId: '', config: parse(config) });

const AMOUNT_AND_COUNTRY = `{"all": [
  {"pointer": "/amount", "op": "gt", "value": 100},
  {"pointer": "/country", "op": "eq", "value": "NL"}
]}`;

test('delivers matching events unchanged', () => {
  const verdict = run(AMOUNT_AND_COUNTRY, '{"amount": 250, "country": "NL"}');
  assert.equal(verdict.tag, 'deliver');
  assert.equal(stringify(verdict.val.data), '{"amount":250,"country":"NL"}');
});

test('drops with the failed condition as reason', () => {
  assert.deepEqual(
    run(AMOUNT_AND_COUNTRY, '{"amount": 250, "country": "DE"}'),
    drop('json-filter: /country eq "NL" failed (found "DE")'),
  );
});

test('bad config is invalid config', () => {
  assert.throws(() => run('{"all": [{"pointer": "/a", "op": "like"}]}', '{}'), { tag: 'invalid-config' });
});
