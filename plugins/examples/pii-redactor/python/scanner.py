"""A small hand-written scanner for PII in text (no regex engine, as in the
Rust original, so both find exactly the same spans).

- An email address is `local@domain`: the local part of letters, digits
  and `._%+-`; the domain of labels of letters, digits and `-` joined by
  dots, ending in a label of two or more letters.
- A card number is 13 to 19 digits, optionally grouped by single spaces or
  dashes, that passes the Luhn check. Within a longer run of digit groups
  the longest passing stretch of whole groups is taken, so a card number
  right after another number (`qty 2 4111 1111 1111 1111`) is still found.

Everything the scanner looks at is ASCII ("letters" and "digits" are ASCII
ones only), so indexes into the str match the Rust byte offsets' spans.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

#: What an email address becomes.
EMAIL = "[redacted email]"
#: What a card number becomes.
CARD = "[redacted card]"

#: How many digits a card number has: 13 to 19.
CARD_DIGITS = range(13, 20)

#: A span of text, as (start, end) indexes.
Span = Tuple[int, int]

_DIGIT = frozenset("0123456789")
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _DIGIT | _ALPHA
_LOCAL = _ALNUM | frozenset("._%+-")
_DOMAIN = _ALNUM | frozenset(".-")


def redact(text: str) -> Tuple[str, int]:
    """`text` with emails and then card numbers replaced, and how many were."""
    emails = find_emails(text)
    text = replace(text, emails, EMAIL)
    cards = find_cards(text)
    return replace(text, cards, CARD), len(emails) + len(cards)


def find_emails(text: str) -> List[Span]:
    """The spans of email addresses in `text`, in order."""
    found: List[Span] = []
    start_from = 0
    while True:
        at = text.find("@", start_from)
        if at < 0:
            return found
        start_from = at + 1
        # A local part starts after the address before it, never inside it.
        floor = found[-1][1] if found else 0
        start = at
        while start > floor and text[start - 1] in _LOCAL:
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        end = at + 1
        while end < len(text) and text[end] in _DOMAIN:
            end += 1
        while end > at + 1 and text[end - 1] in ".-":
            end -= 1
        if start < at and is_domain_name(text[at + 1 : end]):
            found.append((start, end))
            start_from = end


def find_cards(text: str) -> List[Span]:
    """The spans of card numbers in `text`, in order."""
    found: List[Span] = []
    at = 0
    while at < len(text):
        if text[at] not in _DIGIT:
            at += 1
            continue
        groups = digit_groups(text, at)
        at = groups[-1][1]
        first = 0
        while first < len(groups):
            last = longest_card(text, groups[first:])
            if last is None:
                first += 1
            else:
                found.append((groups[first][0], groups[first + last][1]))
                first += last + 1
    return found


def digit_groups(text: str, start: int) -> List[Span]:
    """The digit runs starting at `start`, joined by single spaces or dashes."""
    groups: List[Span] = []
    begin = start
    while True:
        end = begin
        while end < len(text) and text[end] in _DIGIT:
            end += 1
        groups.append((begin, end))
        joined = end + 1 < len(text) and text[end] in " -" and text[end + 1] in _DIGIT
        if not joined:
            return groups
        begin = end + 1


def longest_card(text: str, groups: List[Span]) -> Optional[int]:
    """How many groups after the first (an index into `groups`) make the
    longest card number starting at `groups[0]`, if any does."""
    best = None
    digits: List[int] = []
    for i, (start, end) in enumerate(groups):
        digits.extend(ord(char) - 48 for char in text[start:end])
        if len(digits) >= CARD_DIGITS.stop:
            break
        if len(digits) in CARD_DIGITS and luhn(digits):
            best = i
    return best


def luhn(digits: List[int]) -> bool:
    """The Luhn checksum: from the right, every second digit doubled (minus
    9 past 9); valid when the sum is a multiple of 10."""
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def is_domain_name(domain: str) -> bool:
    """Labels of letters, digits and inner dashes, at least two, the last
    one two or more letters."""
    labels = domain.split(".")
    return (
        len(labels) >= 2
        and all(label and label[0] != "-" and label[-1] != "-" for label in labels)
        and len(labels[-1]) >= 2
        and all(char in _ALPHA for char in labels[-1])
    )


def replace(text: str, spans: List[Span], token: str) -> str:
    """`text` with each of `spans` (in order, not overlapping) replaced by
    `token`."""
    out = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(token)
        last = end
    out.append(text[last:])
    return "".join(out)
