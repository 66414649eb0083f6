/**
 * The data rewrite the config describes: its `moves` in order, then its
 * `remove` list, then its `set` entries, each step seeing the data as the
 * previous one left it.
 */
import { Pointer } from './pointer.js';
import { invalidEvent, JsonError, read, readStruct } from '../../../sdk-js/sdk.js';

/** Reads a pointer, as serde reads the Rust example's `Pointer` (from a string). */
export const readPointer = (value) => Pointer.parse(read.string(value));

/**
 * Reads a `moves` entry, `{from, to, required?}`: take the value at `from`
 * out and write it at `to`; a missing `from` is an error when `required`,
 * otherwise the move is skipped.
 */
export const readMove = (value) =>
  readStruct(value, 'Move', { from: [readPointer], to: [readPointer], required: [read.bool, () => false] });

/** Reads the `set` entries, `{"/pointer": value, ...}`, as `[pointer, value]` pairs in order. */
export const readSets = (value) => Array.from(read.map(value), ([pointer, v]) => [Pointer.parse(pointer), v]);

/**
 * Rewrites `data` in place: the moves, then the removals, then the sets;
 * returns the counts for the log (`moved`, `skipped`, `removed`, `set`).
 * Throws an `invalid-event` error naming the step and the place (e.g. `set
 * /total/scale: /total is a number, not an object`); `data` is then partly
 * rewritten and should be dropped.
 */
export function rewrite(data, moves, remove, sets) {
  const counts = { moved: 0, skipped: 0, removed: 0, set: 0 };
  for (const { from, to, required } of moves) {
    const value = from.take(data);
    if (value !== undefined) {
      step(`move ${from} to ${to}`, () => to.insert(data, value));
      counts.moved++;
    } else if (required) {
      throw invalidEvent(`move ${from} to ${to}: the data has no ${from}`);
    } else {
      counts.skipped++;
    }
  }
  for (const pointer of remove) {
    if (pointer.take(data) !== undefined) counts.removed++;
  }
  // Each config value is written once, so it goes in without a copy.
  for (const [pointer, value] of sets) {
    step(`set ${pointer}`, () => pointer.insert(data, value));
    counts.set++;
  }
  return counts;
}

/** Runs `write`; a failure becomes an `invalid-event` error `name: why`. */
function step(name, write) {
  try {
    write();
  } catch (e) {
    if (e instanceof JsonError) throw invalidEvent(`${name}: ${e.message}`);
    throw e;
  }
}
