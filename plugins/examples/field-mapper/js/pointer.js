/**
 * RFC 6901 JSON pointers below the root of an event's data, and the three
 * things the mapper does with them: take a value out, write one in
 * (creating missing parent objects), and print the parsed form back.
 *
 * A reference token steps into an object member, or into an element of an
 * existing array when the token is one of its indexes (`0`, `1`, ... without
 * leading zeros). Arrays never grow: `-` and indexes past the end name
 * nothing. The root pointer `""` is refused, since every mapping step moves,
 * removes or sets a member.
 */
import { child, debug, JsonError } from '../../../sdk-js/sdk.js';

/** A parsed pointer with at least one reference token, e.g. `/total/minor_units`. */
export class Pointer {
  /**
   * `parents`: the unescaped tokens leading to the container of the value
   * named (`~1` already turned into `/`, `~0` into `~`); `last`: the
   * unescaped token naming the value in that container.
   */
  constructor(parents, last) {
    this.parents = parents;
    this.last = last;
  }

  /**
   * Parses `text`: `/` followed by tokens separated by `/`, where `~0`
   * stands for `~` and `~1` for `/`. Throws a `JsonError` saying why not.
   */
  static parse(text) {
    if (!text.startsWith('/')) throw new JsonError(`pointer ${debug(text)} must start with \`/\``);
    const tokens = text.slice(1).split('/').map(unescape);
    if (tokens.includes(undefined)) {
      throw new JsonError(`pointer ${debug(text)} has a \`~\` not followed by \`0\` or \`1\``);
    }
    return new Pointer(tokens.slice(0, -1), tokens.at(-1));
  }

  /**
   * Removes the value this pointer names from `data` and returns it;
   * `undefined` (and `data` untouched) when there is none. An array element
   * taken out shifts the later ones down.
   */
  take(data) {
    const current = this.parents.reduce((value, token) => child(value, token), data);
    if (current instanceof Map) {
      const value = current.get(this.last);
      current.delete(this.last); // the others keep their order
      return value;
    }
    if (Array.isArray(current)) {
      const i = index(this.last, current.length);
      return i === undefined ? undefined : current.splice(i, 1)[0];
    }
    return undefined;
  }

  /**
   * Writes `value` where this pointer names, replacing what is there.
   * Missing members on the way become empty objects; a new member goes at
   * the end of its object. Throws a `JsonError` naming the place (e.g.
   * `/total is a number, not an object`) when the way passes through
   * something other than an object or an existing array element.
   */
  insert(data, value) {
    let current = data;
    this.parents.forEach((token, depth) => {
      if (current instanceof Map) {
        if (!current.has(token)) current.set(token, new Map());
        current = current.get(token);
      } else {
        current = current[this.element(current, token, depth)];
      }
    });
    if (current instanceof Map) current.set(this.last, value);
    else current[this.element(current, this.last, this.parents.length)] = value;
  }

  /**
   * The index of the existing element `token` names in `container`, an
   * array found after `depth` tokens; an error naming the place for
   * anything else.
   */
  element(container, token, depth) {
    if (!Array.isArray(container)) {
      throw new JsonError(`${this.place(depth)} is ${kind(container)}, not an object`);
    }
    const i = index(token, container.length);
    if (i === undefined) {
      throw new JsonError(
        `${this.place(depth)} is an array of ${container.length} and ${debug(token)} is not one of its indexes`,
      );
    }
    return i;
  }

  /** The first `depth` tokens as pointer text, or `the data` for none. */
  place(depth) {
    return depth === 0 ? 'the data' : this.parents.slice(0, depth).map(escape).join('');
  }

  toString() {
    return [...this.parents, this.last].map(escape).join('');
  }
}

/** One token as pointer text: `/` then the token with `~` and `/` escaped. */
const escape = (token) => `/${token.replaceAll('~', '~0').replaceAll('/', '~1')}`;

/**
 * Reads one token of pointer text (between two `/`): `~0` is `~`, `~1` is
 * `/`; `undefined` for a `~` followed by anything else.
 */
function unescape(token) {
  let out = '';
  for (let i = 0; i < token.length; i++) {
    if (token[i] !== '~') out += token[i];
    else if (token[i + 1] === '0' || token[i + 1] === '1') out += token[++i] === '0' ? '~' : '/';
    else return undefined;
  }
  return out;
}

/**
 * The array index `token` names in an array of `length`: decimal digits
 * without leading zeros, below `length`; `undefined` otherwise.
 */
function index(token, length) {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
  const i = Number(token);
  return i < length ? i : undefined;
}

/** How a value reads in an error message. */
function kind(value) {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return 'a boolean';
    case 'bigint':
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
  }
  return Array.isArray(value) ? 'an array' : 'an object';
}
