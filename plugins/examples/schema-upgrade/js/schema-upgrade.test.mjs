// The Rust example's unit tests (lib.rs, upgrade.rs), on the JavaScript
// port. Run with `node --test plugins/examples/*/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { handle } from './lib.js';
import { parse, parseData, stringify } from '../../../sdk-js/sdk.js';
import { readOrderV1, splitName, toV2 } from './upgrade.js';

/** v1 JSON text through the mapping, as v2 JSON text. */
const upgrade = (v1) => stringify(toV2(parseData(parse(v1), readOrderV1), 'EUR'));

test('renames and splits fields and keeps the rest in order', () => {
  const v2 = upgrade(`{
    "order_id": "ord_1",
    "customer_name": "Ada Lovelace",
    "customer_email": "ada@example.com",
    "amount_cents": 1250,
    "currency": "GBP",
    "items": [{"sku": "A1", "qty": 2}]
  }`);
  assert.equal(
    v2,
    '{"order_id":"ord_1","items":[{"sku":"A1","qty":2}],' +
      '"customer":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"},' +
      '"amount":{"value":1250,"currency":"GBP"}}',
  );
});

test('missing currency takes the default', () => {
  const v2 = parse(upgrade('{"customer_name": "Ada Lovelace", "amount_cents": 5}'));
  assert.equal(stringify(v2.get('amount')), '{"value":5,"currency":"EUR"}');
  assert.ok(!v2.get('customer').has('email'));
});

test('passed-through values keep their exact form', () => {
  assert.equal(
    upgrade('{"customer_name": "A B", "amount_cents": 18446744073, "1": 1.0, "big": 18446744073709551615}'),
    '{"1":1.0,"big":18446744073709551615,"customer":{"first_name":"A","last_name":"B"},' +
      '"amount":{"value":18446744073,"currency":"EUR"}}',
  );
});

test('names split at the first space', () => {
  assert.deepEqual(splitName('Ada Lovelace'), ['Ada', 'Lovelace']);
  assert.deepEqual(splitName('  Vincent  van Gogh '), ['Vincent', 'van Gogh']);
  assert.deepEqual(splitName('Plato'), ['Plato', '']);
  assert.equal(splitName('   '), undefined);
  // Rust's whitespace, not JavaScript's: U+0085 is, U+FEFF is not.
  assert.deepEqual(splitName('Ada\u0085Lovelace'), ['Ada', 'Lovelace']);
  assert.deepEqual(splitName('\ufeffAda'), ['\ufeffAda', '']);
});

test('rejects data that is not v1', () => {
  assert.throws(() => upgrade('{"amount_cents": 1}'), { val: 'data: missing field `customer_name`' });
  assert.throws(() => upgrade('{"customer_name": "A B", "amount_cents": 1.5}'), {
    val: 'data: invalid type: floating point `1.5`, expected i64',
  });
  assert.throws(() => upgrade('{"customer_name": " ", "amount_cents": 1}'), { tag: 'invalid-event' });
  assert.throws(
    () => upgrade('{"customer_name": "A B", "amount_cents": 1, "amount": {"value": 1, "currency": "EUR"}}'),
    { tag: 'invalid-event', val: /v2 field `amount`/ },
  );
});

const v1Event = () => ({
  id: '',
  eventType: 'order.created',
  schemaVersion: 1,
  timestamp: '',
  data: parse('{"order_id": "ord_1", "customer_name": "Ada Lovelace", "amount_cents": 1250}'),
  metadata: [],
});
const target = (config, schemaVersion) => ({ endpointId: '', schemaVersion, config: parse(config) });

test('upgrades and sets the version', () => {
  const verdict = handle(v1Event(), target('{"default_currency": "GBP"}', 2));
  assert.equal(verdict.tag, 'deliver');
  assert.equal(verdict.val.schemaVersion, 2);
  assert.equal(
    stringify(verdict.val.data),
    '{"order_id":"ord_1","customer":{"first_name":"Ada","last_name":"Lovelace"},"amount":{"value":1250,"currency":"GBP"}}',
  );
});

test('rejects other versions, types and targets', () => {
  assert.throws(() => handle({ ...v1Event(), schemaVersion: 2 }, target('{}')), {
    tag: 'invalid-event',
    val: 'expected schema version 1, got 2',
  });
  assert.throws(() => handle({ ...v1Event(), eventType: 'order.paid' }, target('{}')), {
    tag: 'invalid-event',
    val: 'expected a order.created event, got order.paid',
  });
  assert.throws(() => handle(v1Event(), target('{}', 3)), {
    tag: 'invalid-config',
    val: 'this plugin upgrades order.created v1 to v2, but the endpoint wants v3',
  });
  assert.throws(() => handle(v1Event(), target('{"currency": 1}')), {
    tag: 'invalid-config',
    val: 'config: unknown field `currency`, expected `default_currency`',
  });
});

test('data that is not v1 is an invalid event', () => {
  for (const data of [
    '{"customer_name": "Ada Lovelace"}',
    '{"customer_name": "Ada", "amount_cents": "12.50"}',
    '[1, 2]',
  ]) {
    assert.throws(() => handle({ ...v1Event(), data: parse(data) }, target('{}')), { tag: 'invalid-event' }, data);
  }
});
