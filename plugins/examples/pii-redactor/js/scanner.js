/**
 * A small hand-written scanner for PII in text (no regex engine, as in the
 * Rust example).
 *
 * - An email address is `local@domain`: the local part of letters, digits
 *   and `._%+-`; the domain of labels of letters, digits and `-` joined by
 *   dots, ending in a label of two or more letters.
 * - A card number is 13 to 19 digits, optionally grouped by single spaces or
 *   dashes, that passes the Luhn check. Within a longer run of digit groups
 *   the longest passing stretch of whole groups is taken, so a card number
 *   right after another number (`qty 2 4111 1111 1111 1111`) is still found.
 *
 * Everything the scanner matches is ASCII, so ranges of UTF-16 indexes here
 * find exactly what the Rust scanner's byte ranges find.
 */

/** What an email address becomes. */
export const EMAIL = '[redacted email]';
/** What a card number becomes. */
export const CARD = '[redacted card]';

const MIN_CARD_DIGITS = 13;
const MAX_CARD_DIGITS = 19;

/** `[text with emails and then card numbers replaced, how many were]`. */
export function redact(text) {
  const emails = findEmails(text);
  const withoutEmails = replace(text, emails, EMAIL);
  const cards = findCards(withoutEmails);
  return [replace(withoutEmails, cards, CARD), emails.length + cards.length];
}

/** The ranges `[start, end]` (end excluded) of email addresses in `text`, in order. */
export function findEmails(text) {
  const found = [];
  for (let from = 0, at; (at = text.indexOf('@', from)) !== -1; ) {
    from = at + 1;
    // A local part starts after the address before it, never inside it.
    const floor = found.length ? found[found.length - 1][1] : 0;
    let start = at;
    while (start > floor && isLocal(text[start - 1])) start--;
    while (start < at && text[start] === '.') start++;
    let end = at + 1;
    while (end < text.length && isDomain(text[end])) end++;
    while (end > at + 1 && (text[end - 1] === '.' || text[end - 1] === '-')) end--;
    if (start < at && isDomainName(text.slice(at + 1, end))) {
      found.push([start, end]);
      from = end;
    }
  }
  return found;
}

/**
 * Runs of digit groups joined by single spaces or dashes, and the groups in
 * a run (regular expressions run natively, where a loop over every
 * character is slow in the plugin's interpreter).
 */
const DIGIT_RUNS = /[0-9]+(?:[ -][0-9]+)*/g;
const DIGIT_GROUPS = /[0-9]+/g;

/** The ranges `[start, end]` (end excluded) of card numbers in `text`, in order. */
export function findCards(text) {
  const found = [];
  for (const { 0: run, index: at } of text.matchAll(DIGIT_RUNS)) {
    if (run.length < MIN_CARD_DIGITS) continue; // too few digits for a card
    const groups = Array.from(run.matchAll(DIGIT_GROUPS), (g) => [at + g.index, at + g.index + g[0].length]);
    for (let first = 0; first < groups.length; ) {
      const last = longestCard(text, groups, first);
      if (last === undefined) {
        first++;
      } else {
        found.push([groups[first][0], groups[last][1]]);
        first = last + 1;
      }
    }
  }
  return found;
}

/**
 * The index of the last group of the longest card number made of whole
 * groups from `groups[first]` on, or `undefined` if none is.
 */
function longestCard(text, groups, first) {
  let best;
  const digits = [];
  for (let i = first; i < groups.length; i++) {
    const [start, end] = groups[i];
    for (let k = start; k < end; k++) digits.push(text.charCodeAt(k) - 0x30);
    if (digits.length > MAX_CARD_DIGITS) break;
    if (digits.length >= MIN_CARD_DIGITS && luhn(digits)) best = i;
  }
  return best;
}

/**
 * The Luhn checksum: from the right, every second digit doubled (minus 9
 * past 9); valid when the sum is a multiple of 10.
 */
export function luhn(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digits[digits.length - 1 - i];
    const doubled = i % 2 === 1 ? d * 2 : d;
    sum += doubled > 9 ? doubled - 9 : doubled;
  }
  return sum % 10 === 0;
}

const isDigit = (c) => c >= '0' && c <= '9';
const isAlphanumeric = (c) => isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isLocal = (c) => isAlphanumeric(c) || '._%+-'.includes(c);
const isDomain = (c) => isAlphanumeric(c) || c === '.' || c === '-';

/**
 * Labels of letters, digits and inner dashes, at least two, the last one
 * two or more letters.
 */
function isDomainName(domain) {
  const labels = domain.split('.');
  const tld = labels.at(-1);
  return (
    labels.length >= 2 &&
    labels.every((label) => label !== '' && !label.startsWith('-') && !label.endsWith('-')) &&
    tld.length >= 2 &&
    /^[a-zA-Z]+$/.test(tld)
  );
}

/** `text` with each of `spans` (in order) replaced by `token`. */
function replace(text, spans, token) {
  let out = '';
  let last = 0;
  for (const [start, end] of spans) {
    out += text.slice(last, start) + token;
    last = end;
  }
  return out + text.slice(last);
}
