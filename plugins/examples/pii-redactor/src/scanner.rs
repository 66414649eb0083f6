//! A small hand-written scanner for PII in text (no regex engine: it would
//! multiply the component's size).
//!
//! - An email address is `local@domain`: the local part of letters, digits
//!   and `._%+-`; the domain of labels of letters, digits and `-` joined by
//!   dots, ending in a label of two or more letters.
//! - A card number is 13 to 19 digits, optionally grouped by single spaces or
//!   dashes, that passes the Luhn check. Within a longer run of digit groups
//!   the longest passing stretch of whole groups is taken, so a card number
//!   right after another number (`qty 2 4111 1111 1111 1111`) is still found.
//!
//! Everything the scanner looks at is ASCII, so spans always fall on UTF-8
//! character boundaries.

use std::ops::Range;

/// What an email address becomes.
pub const EMAIL: &str = "[redacted email]";
/// What a card number becomes.
pub const CARD: &str = "[redacted card]";

const CARD_DIGITS: Range<usize> = 13..20;

/// `text` with emails and then card numbers replaced, and how many were.
pub fn redact(text: &str) -> (String, usize) {
    let emails = find_emails(text);
    let text = replace(text, &emails, EMAIL);
    let cards = find_cards(&text);
    (replace(&text, &cards, CARD), emails.len() + cards.len())
}

/// The byte ranges of email addresses in `text`, in order.
pub fn find_emails(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found: Vec<Range<usize>> = Vec::new();
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .iter()
        .position(|&b| b == b'@')
        .map(|i| from + i)
    {
        from = at + 1;
        // A local part starts after the address before it, never inside it.
        let floor = found.last().map_or(0, |f| f.end);
        let mut start = at;
        while start > floor && is_local(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start < at && is_domain_name(&text[at + 1..end]) {
            found.push(start..end);
            from = end;
        }
    }
    found
}

/// The byte ranges of card numbers in `text`, in order.
pub fn find_cards(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_digit() {
            at += 1;
            continue;
        }
        let groups = digit_groups(bytes, at);
        at = groups.last().map_or(at + 1, |g| g.end);
        let mut first = 0;
        while first < groups.len() {
            match longest_card(bytes, &groups[first..]) {
                Some(last) => {
                    found.push(groups[first].start..groups[first + last].end);
                    first += last + 1;
                }
                None => first += 1,
            }
        }
    }
    found
}

/// The digit runs starting at `start`, joined by single spaces or dashes.
fn digit_groups(bytes: &[u8], start: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut begin = start;
    loop {
        let mut end = begin;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        groups.push(begin..end);
        let joined = end + 1 < bytes.len()
            && matches!(bytes[end], b' ' | b'-')
            && bytes[end + 1].is_ascii_digit();
        if !joined {
            return groups;
        }
        begin = end + 1;
    }
}

/// How many groups after the first (an index into `groups`) make the longest
/// card number starting at `groups[0]`, if any does.
fn longest_card(bytes: &[u8], groups: &[Range<usize>]) -> Option<usize> {
    let mut best = None;
    let mut digits = Vec::with_capacity(CARD_DIGITS.end);
    for (i, group) in groups.iter().enumerate() {
        digits.extend(bytes[group.clone()].iter().map(|b| b - b'0'));
        if digits.len() >= CARD_DIGITS.end {
            break;
        }
        if CARD_DIGITS.contains(&digits.len()) && luhn(&digits) {
            best = Some(i);
        }
    }
    best
}

/// The Luhn checksum: from the right, every second digit doubled (minus 9
/// past 9); valid when the sum is a multiple of 10.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 1, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// Labels of letters, digits and inner dashes, at least two, the last one
/// two or more letters.
fn is_domain_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok =
        |label: &&str| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-');
    labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// `text` with each of `spans` (in order, not overlapping) replaced by
/// `token`.
fn replace(text: &str, spans: &[Range<usize>], token: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for span in spans {
        out.push_str(&text[last..span.start]);
        out.push_str(token);
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        find_emails(text).into_iter().map(|r| &text[r]).collect()
    }

    fn cards(text: &str) -> Vec<&str> {
        find_cards(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_email_addresses() {
        assert_eq!(emails("ada@example.com"), ["ada@example.com"]);
        assert_eq!(
            emails("Mail ada.lovelace+wh@mail.example.co.uk. Or b_o-b%x@a-b.io!"),
            ["ada.lovelace+wh@mail.example.co.uk", "b_o-b%x@a-b.io"]
        );
        assert_eq!(emails("<.dot@example.com>"), ["dot@example.com"]);
        assert_eq!(emails("ünïcødé ada@example.com ✓"), ["ada@example.com"]);
    }

    #[test]
    fn a_local_part_does_not_reach_back_into_the_address_before_it() {
        assert_eq!(emails("a@b.com+c@d.org"), ["a@b.com", "+c@d.org"]);
        assert_eq!(emails("a@b.com_x@c.com"), ["a@b.com", "_x@c.com"]);
        assert_eq!(emails("a@b.co@c.com"), ["a@b.co"]);
        assert_eq!(
            redact("a@b.com+c@d.org"),
            ("[redacted email][redacted email]".to_owned(), 2)
        );
    }

    #[test]
    fn ignores_things_that_are_not_email_addresses() {
        for text in [
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@example.c",
            "ada@example.123",
            "ada@-example.com",
            "ada@example..com",
            "a @ b.com",
            "price 10@5.00",
        ] {
            assert_eq!(emails(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn finds_card_numbers_passing_luhn() {
        assert_eq!(cards("4111111111111111"), ["4111111111111111"]);
        assert_eq!(cards("card: 4111 1111 1111 1111."), ["4111 1111 1111 1111"]);
        assert_eq!(cards("5500-0000-0000-0004"), ["5500-0000-0000-0004"]);
        assert_eq!(cards("amex 3782 822463 10005"), ["3782 822463 10005"]);
        assert_eq!(cards("13 digits 4222222222222 ok"), ["4222222222222"]);
        assert_eq!(
            cards("19 digits 6011000000000000001"),
            ["6011000000000000001"]
        );
        assert_eq!(
            cards("qty 2 4111 1111 1111 1111 x"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            cards("4111111111111111,5500000000000004"),
            ["4111111111111111", "5500000000000004"]
        );
    }

    #[test]
    fn ignores_digits_that_are_not_card_numbers() {
        for text in [
            "4111111111111112",
            "411111111111",
            "41111111111111111111111",
            "4111  1111 1111 1111",
            "4111--1111-1111-1111",
            "2026-01-31T12:00:00Z",
            "+31 6 1234 5678",
            "no digits at all",
        ] {
            assert_eq!(cards(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn luhn_known_answers() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("79927398710")));
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("0")));
    }

    #[test]
    fn redact_replaces_and_counts() {
        assert_eq!(
            redact("to ada@example.com, card 4111-1111-1111-1111, ref 42"),
            (
                "to [redacted email], card [redacted card], ref 42".to_owned(),
                2
            )
        );
        assert_eq!(redact("nothing here"), ("nothing here".to_owned(), 0));
    }
}
