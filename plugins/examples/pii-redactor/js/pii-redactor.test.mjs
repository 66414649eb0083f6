// The Rust example's unit tests (lib.rs, scanner.rs), on the JavaScript
// port. Run with `node --test plugins/examples/*/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { handle } from './lib.js';
import { findCards, findEmails, luhn, redact } from './scanner.js';
import { parse, stringify } from '../../../sdk-js/sdk.js';

const emails = (text) => findEmails(text).map(([start, end]) => text.slice(start, end));
const cards = (text) => findCards(text).map(([start, end]) => text.slice(start, end));

test('finds email addresses', () => {
  assert.deepEqual(emails('ada@example.com'), ['ada@example.com']);
  assert.deepEqual(emails('Mail ada.lovelace+wh@mail.example.co.uk. Or b_o-b%x@a-b.io!'), [
    'ada.lovelace+wh@mail.example.co.uk',
    'b_o-b%x@a-b.io',
  ]);
  assert.deepEqual(emails('<.dot@example.com>'), ['dot@example.com']);
  assert.deepEqual(emails('ünïcødé ada@example.com ✓'), ['ada@example.com']);
});

test('ignores things that are not email addresses', () => {
  for (const text of [
    '@example.com',
    'ada@',
    'ada@localhost',
    'ada@example.c',
    'ada@example.123',
    'ada@-example.com',
    'ada@example..com',
    'a @ b.com',
    'price 10@5.00',
  ]) {
    assert.deepEqual(emails(text), [], text);
  }
});

test('finds card numbers passing luhn', () => {
  assert.deepEqual(cards('4111111111111111'), ['4111111111111111']);
  assert.deepEqual(cards('card: 4111 1111 1111 1111.'), ['4111 1111 1111 1111']);
  assert.deepEqual(cards('5500-0000-0000-0004'), ['5500-0000-0000-0004']);
  assert.deepEqual(cards('amex 3782 822463 10005'), ['3782 822463 10005']);
  assert.deepEqual(cards('13 digits 4222222222222 ok'), ['4222222222222']);
  assert.deepEqual(cards('19 digits 6011000000000000001'), ['6011000000000000001']);
  assert.deepEqual(cards('qty 2 4111 1111 1111 1111 x'), ['4111 1111 1111 1111']);
  assert.deepEqual(cards('4111111111111111,5500000000000004'), ['4111111111111111', '5500000000000004']);
});

test('ignores digits that are not card numbers', () => {
  for (const text of [
    '4111111111111112',
    '411111111111',
    '41111111111111111111111',
    '4111  1111 1111 1111',
    '4111--1111-1111-1111',
    '2026-01-31T12:00:00Z',
    '+31 6 1234 5678',
    'no digits at all',
  ]) {
    assert.deepEqual(cards(text), [], text);
  }
});

test('luhn known answers', () => {
  const digits = (s) => [...s].map(Number);
  assert.ok(luhn(digits('79927398713')));
  assert.ok(!luhn(digits('79927398710')));
  assert.ok(luhn(digits('4111111111111111')));
  assert.ok(luhn(digits('0')));
});

test('redact replaces and counts', () => {
  assert.deepEqual(redact('to ada@example.com, card 4111-1111-1111-1111, ref 42'), [
    'to [redacted email], card [redacted card], ref 42',
    2,
  ]);
  assert.deepEqual(redact('nothing here'), ['nothing here', 0]);
});

test('a local part does not reach back into the address before it', () => {
  const emails = (text) => findEmails(text).map(([start, end]) => text.slice(start, end));
  assert.deepEqual(emails('a@b.com+c@d.org'), ['a@b.com', '+c@d.org']);
  assert.deepEqual(emails('a@b.com_x@c.com'), ['a@b.com', '_x@c.com']);
  assert.deepEqual(emails('a@b.co@c.com'), ['a@b.co']);
  assert.deepEqual(redact('a@b.com+c@d.org'), ['[redacted email][redacted email]', 2]);
});

/** Runs the plugin on JSON texts; the delivered data as JSON text, and the log. */
function run(config, data) {
  const lines = [];
  const event = { id: '', eventType: 'user.updated', timestamp: '', data: parse(data), metadata: [] };
  const verdict = handle(event, { endpointId: '', config: parse(config) }, (level, message) =>
    lines.push(`[${level}] ${message}`),
  );
  assert.equal(verdict.tag, 'deliver');
  return [stringify(verdict.val.data), lines];
}

test('redacts strings at any depth and configured fields', () => {
  const data = `{
    "note": "mail ada@example.com, card 4111 1111 1111 1111",
    "contacts": [{"email": "bob@example.org"}, 42, null],
    "customer": {"phone": "+31 6 1234 5678", "age": 36},
    "amount": 1250
  }`;
  const [redacted, log] = run('{"pointers": ["/customer/phone", "/missing/field"]}', data);
  assert.equal(
    redacted,
    '{"note":"mail [redacted email], card [redacted card]","contacts":[{"email":"[redacted email]"},42,null],' +
      '"customer":{"phone":"[redacted]","age":36},"amount":1250}',
  );
  assert.deepEqual(log, ['[debug] redacted 1 fields and 3 matches']);
});

test('pointers reach into arrays, and the data may be a bare string', () => {
  assert.equal(run('{"pointers": ["/a/1", "/a/2"]}', '{"a": [1, {"x": 2}]}')[0], '{"a":[1,"[redacted]"]}');
  assert.equal(run('{}', '"ada@example.com"')[0], '"[redacted email]"');
});

test('leaves clean data alone', () => {
  const data = '{"id":"ord_1","total":4111111111111111,"at":"2026-01-31"}';
  assert.equal(run('{}', data)[0], data);
});

test('bad config is invalid config', () => {
  for (const [config, message] of [
    ['{"pointers": ["name"]}', 'config: pointer "name" must start with `/`'],
    ['{"pointers": "/a"}', 'config: invalid type: string "/a", expected a sequence'],
    ['{"x": 1}', 'config: unknown field `x`, expected `pointers`'],
  ]) {
    assert.throws(() => run(config, '{}'), { tag: 'invalid-config', val: message }, config);
  }
});
