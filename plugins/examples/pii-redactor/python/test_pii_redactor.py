"""Unit tests of pii-redactor's Python port, mirroring the Rust crate's
(`src/lib.rs`, `src/scanner.rs`). Run with
`python3 -m unittest discover -s plugins/examples/pii-redactor/python`."""

import unittest
from typing import List

import gateway_sdk
from gateway_sdk import Deliver, Event, InvalidConfig, Target
from rust_json import Value
import pii_redactor
from scanner import find_cards, find_emails, luhn, redact


def run(config: Value, data: Value) -> Value:
    verdict = pii_redactor.handle(Event("user.updated", data), Target(config))
    assert isinstance(verdict, Deliver), verdict
    return verdict.event.data


def emails(text: str) -> List[str]:
    return [text[start:end] for start, end in find_emails(text)]


def cards(text: str) -> List[str]:
    return [text[start:end] for start, end in find_cards(text)]


class HandleTest(unittest.TestCase):
    def setUp(self) -> None:
        self.logs: List[str] = []
        gateway_sdk.set_log_sink(lambda level, message: self.logs.append(f"{level}: {message}"))

    def tearDown(self) -> None:
        gateway_sdk.set_log_sink(gateway_sdk._stderr_sink)

    def test_redacts_strings_at_any_depth_and_configured_fields(self) -> None:
        data = {
            "note": "mail ada@example.com, card 4111 1111 1111 1111",
            "contacts": [{"email": "bob@example.org"}, 42, None],
            "customer": {"phone": "+31 6 1234 5678", "age": 36},
            "amount": 1250,
        }
        config = {"pointers": ["/customer/phone", "/missing/field"]}
        self.assertEqual(
            run(config, data),
            {
                "note": "mail [redacted email], card [redacted card]",
                "contacts": [{"email": "[redacted email]"}, 42, None],
                "customer": {"phone": "[redacted]", "age": 36},
                "amount": 1250,
            },
        )
        self.assertEqual(self.logs, ["debug: redacted 1 fields and 3 matches"])

    def test_leaves_clean_data_alone(self) -> None:
        data = {"id": "ord_1", "total": 4111111111111111, "at": "2026-01-31"}
        self.assertEqual(run({}, dict(data)), data)

    def test_configured_fields_go_whatever_their_type(self) -> None:
        data = {"a": {"b": [1, {"c": 2}]}, "list": [True, None]}
        self.assertEqual(
            run({"pointers": ["/a/b", "/list/1", "/list/2", "/list/01"]}, data),
            {"a": {"b": "[redacted]"}, "list": [True, "[redacted]"]},
        )

    def test_bad_config_is_invalid_config(self) -> None:
        for config, message in [
            ({"pointers": ["name"]}, 'config: pointer "name" must start with `/`'),
            ({"pointers": "/a"}, 'config: invalid type: string "/a", expected a sequence'),
            ({"x": 1}, "config: unknown field `x`, expected `pointers`"),
            ({"pointers": [1]}, "config: invalid type: integer `1`, expected a string"),
            (None, "config: invalid type: null, expected struct Config"),
        ]:
            with self.subTest(config=config), self.assertRaises(InvalidConfig) as caught:
                run(config, {})
            self.assertEqual(caught.exception.message, message)

    def test_a_list_config_is_read_as_the_fields_in_order(self) -> None:
        # As serde reads a struct from a sequence.
        self.assertEqual(run([["/a"]], {"a": 1}), {"a": "[redacted]"})
        self.assertEqual(run([], {"a": 1}), {"a": 1})
        with self.assertRaises(InvalidConfig) as caught:
            run([[], 1], {})
        self.assertEqual(
            caught.exception.message, "config: invalid length 2, expected fewer elements in array"
        )


class ScannerTest(unittest.TestCase):
    def test_finds_email_addresses(self) -> None:
        self.assertEqual(emails("ada@example.com"), ["ada@example.com"])
        self.assertEqual(
            emails("Mail ada.lovelace+wh@mail.example.co.uk. Or b_o-b%x@a-b.io!"),
            ["ada.lovelace+wh@mail.example.co.uk", "b_o-b%x@a-b.io"],
        )
        self.assertEqual(emails("<.dot@example.com>"), ["dot@example.com"])
        self.assertEqual(emails("ünïcødé ada@example.com ✓"), ["ada@example.com"])

    def test_a_local_part_does_not_reach_back_into_the_address_before_it(self) -> None:
        self.assertEqual(emails("a@b.com+c@d.org"), ["a@b.com", "+c@d.org"])
        self.assertEqual(emails("a@b.com_x@c.com"), ["a@b.com", "_x@c.com"])
        self.assertEqual(emails("a@b.co@c.com"), ["a@b.co"])
        self.assertEqual(
            redact("a@b.com+c@d.org"), ("[redacted email][redacted email]", 2)
        )

    def test_ignores_things_that_are_not_email_addresses(self) -> None:
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
            "ünï@éxample.com",  # only ASCII letters count
        ]:
            self.assertEqual(emails(text), [], text)

    def test_finds_card_numbers_passing_luhn(self) -> None:
        self.assertEqual(cards("4111111111111111"), ["4111111111111111"])
        self.assertEqual(cards("card: 4111 1111 1111 1111."), ["4111 1111 1111 1111"])
        self.assertEqual(cards("5500-0000-0000-0004"), ["5500-0000-0000-0004"])
        self.assertEqual(cards("amex 3782 822463 10005"), ["3782 822463 10005"])
        self.assertEqual(cards("13 digits 4222222222222 ok"), ["4222222222222"])
        self.assertEqual(cards("19 digits 6011000000000000001"), ["6011000000000000001"])
        self.assertEqual(cards("qty 2 4111 1111 1111 1111 x"), ["4111 1111 1111 1111"])
        self.assertEqual(
            cards("4111111111111111,5500000000000004"), ["4111111111111111", "5500000000000004"]
        )

    def test_ignores_digits_that_are_not_card_numbers(self) -> None:
        for text in [
            "4111111111111112",
            "411111111111",
            "41111111111111111111111",
            "4111  1111 1111 1111",
            "4111--1111-1111-1111",
            "2026-01-31T12:00:00Z",
            "+31 6 1234 5678",
            "no digits at all",
            "٤١١١١١١١١١١١١١١١",  # only ASCII digits count
        ]:
            self.assertEqual(cards(text), [], text)

    def test_luhn_known_answers(self) -> None:
        def digits(text: str) -> List[int]:
            return [int(c) for c in text]

        self.assertTrue(luhn(digits("79927398713")))
        self.assertFalse(luhn(digits("79927398710")))
        self.assertTrue(luhn(digits("4111111111111111")))
        self.assertTrue(luhn(digits("0")))

    def test_redact_replaces_and_counts(self) -> None:
        self.assertEqual(
            redact("to ada@example.com, card 4111-1111-1111-1111, ref 42"),
            ("to [redacted email], card [redacted card], ref 42", 2),
        )
        self.assertEqual(redact("nothing here"), ("nothing here", 0))


if __name__ == "__main__":
    unittest.main()
