/**
 * The v1 → v2 mapping of `order.created`, as plain functions.
 *
 * v1 `{"customer_name": "Ada Lovelace", "customer_email"?: "...",
 * "amount_cents": 1250, "currency"?: "EUR", ...}` becomes v2
 * `{..., "customer": {"first_name": "Ada", "last_name": "Lovelace",
 * "email"?: "..."}, "amount": {"value": 1250, "currency": "EUR"}}`; every
 * other field passes through unchanged, first and in order.
 */
import { invalidEvent, read, readStruct } from '../../../sdk-js/sdk.js';

/** Fields that v2 introduces; a v1 event must not have them. */
const V2_FIELDS = ['customer', 'amount'];

/** Rust's `char::is_whitespace` (JavaScript's `\s` and `trim` differ: U+FEFF, U+0085). */
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/**
 * Reads an `order.created` payload at schema version 1, as serde reads the
 * Rust example's `OrderV1`: `customer_name` (a string), `customer_email`
 * (optional), `amount_cents` (an i64, as a bigint), `currency` (optional),
 * and every other field in `rest`, in order.
 */
export function readOrderV1(data) {
  const optional = [read.option(read.string), () => undefined];
  return readStruct(
    data,
    'OrderV1',
    {
      customer_name: [read.string],
      customer_email: optional,
      amount_cents: [read.i64],
      currency: optional,
    },
    { rest: true },
  );
}

/**
 * Maps a v1 order to the v2 payload; `defaultCurrency` applies when v1 names
 * none. Throws an `invalid-event` error when the input is not a plausible
 * v1 order.
 */
export function toV2(v1, defaultCurrency) {
  const field = V2_FIELDS.find((f) => v1.rest.has(f));
  if (field !== undefined) throw invalidEvent(`data has the v2 field \`${field}\`; expected v1`);
  const name = splitName(v1.customer_name);
  if (name === undefined) throw invalidEvent('data: `customer_name` is empty');
  const [firstName, lastName] = name;
  const customer = new Map([
    ['first_name', firstName],
    ['last_name', lastName],
  ]);
  if (v1.customer_email !== undefined) customer.set('email', v1.customer_email);
  const amount = new Map([
    ['value', v1.amount_cents],
    ['currency', v1.currency ?? defaultCurrency],
  ]);
  return new Map([...v1.rest, ['customer', customer], ['amount', amount]]);
}

/**
 * Splits a full name at its first whitespace: the first word is the first
 * name, the rest (possibly empty) the last name. `undefined` for a blank name.
 */
export function splitName(full) {
  const name = trimEnd(trimStart(full));
  if (name === '') return undefined;
  const at = name.search(WHITESPACE);
  if (at === -1) return [name, ''];
  return [name.slice(0, at), trimStart(name.slice(at + 1))];
}

function trimStart(text) {
  let start = 0;
  while (start < text.length && WHITESPACE.test(text[start])) start++;
  return text.slice(start);
}

function trimEnd(text) {
  let end = text.length;
  while (end > 0 && WHITESPACE.test(text[end - 1])) end--;
  return text.slice(0, end);
}
