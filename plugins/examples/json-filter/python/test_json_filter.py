"""Unit tests of json-filter's Python port, mirroring the Rust crate's
(`src/lib.rs`, `src/condition.rs`, `src/parse.rs`). Run with
`python3 -m unittest discover -s plugins/examples/json-filter/python`."""

import unittest

from condition import Condition
from gateway_sdk import Deliver, Drop, Event, InvalidConfig, Target, Verdict, decode_data
from parse import ConditionError, parse_condition
from rust_json import Value
import json_filter


def check(pointer: str, op: str, value: Value) -> Condition:
    return parse_condition({"pointer": pointer, "op": op, "value": value})


def holds(condition: Condition, data: Value) -> bool:
    return condition.check(data) is None


def run(config: Value, data: Value) -> Verdict:
    return json_filter.handle(Event("order.created", data), Target(config))


class HandleTest(unittest.TestCase):
    CONFIG = {
        "all": [
            {"pointer": "/amount", "op": "gt", "value": 100},
            {"pointer": "/country", "op": "eq", "value": "NL"},
        ]
    }

    def test_delivers_matching_events_unchanged(self) -> None:
        data = {"amount": 250, "country": "NL"}
        verdict = run(self.CONFIG, data)
        assert isinstance(verdict, Deliver)
        self.assertEqual(verdict.event.data, {"amount": 250, "country": "NL"})

    def test_drops_with_the_failed_condition_as_reason(self) -> None:
        verdict = run(self.CONFIG, {"amount": 250, "country": "DE"})
        self.assertEqual(verdict, Drop('json-filter: /country eq "NL" failed (found "DE")'))

    def test_bad_config_is_invalid_config(self) -> None:
        with self.assertRaises(InvalidConfig) as caught:
            run({"all": [{"pointer": "/a", "op": "like"}]}, {})
        self.assertEqual(
            caught.exception.message,
            'config at /all/0: unknown op "like" '
            "(expected one of eq, ne, gt, gte, lt, lte, exists, contains)",
        )


class ConditionTest(unittest.TestCase):
    def test_eq_and_ne_compare_numbers_by_value(self) -> None:
        self.assertTrue(holds(check("/a", "eq", 1), {"a": 1.0}))
        self.assertTrue(holds(check("/a", "eq", {"b": [1]}), {"a": {"b": [1.0]}}))
        self.assertFalse(holds(check("/a", "eq", "1"), {"a": 1}))
        self.assertTrue(holds(check("/a", "ne", "NL"), {"a": "DE"}))
        self.assertFalse(holds(check("/a", "ne", "NL"), {"a": "NL"}))
        # Booleans are not numbers (in Python, True == 1).
        self.assertFalse(holds(check("/a", "eq", 1), {"a": True}))
        self.assertFalse(holds(check("/a", "eq", [True]), {"a": [1]}))

    def test_ordering_ops_compare_numbers_and_strings_only(self) -> None:
        data = {"n": 100, "t": "2026-01-31T12:00:00Z", "s": True}
        self.assertTrue(holds(check("/n", "gt", 99.5), data))
        self.assertFalse(holds(check("/n", "gt", 100), data))
        self.assertTrue(holds(check("/n", "gte", 100), data))
        self.assertTrue(holds(check("/n", "lt", 101), data))
        self.assertTrue(holds(check("/n", "lte", 100), data))
        self.assertTrue(holds(check("/t", "lt", "2026-02-01"), data))
        self.assertFalse(holds(check("/n", "gt", "5"), data))
        self.assertFalse(holds(check("/s", "lt", 5), data))

    def test_exists_and_contains(self) -> None:
        data = {"a": {"b": None}, "tags": ["x", 2], "s": "hello"}
        self.assertTrue(holds(check("/a/b", "exists", True), data))
        self.assertTrue(holds(check("/a/c", "exists", False), data))
        self.assertTrue(holds(parse_condition({"pointer": "/tags", "op": "exists"}), data))
        self.assertTrue(holds(check("/tags", "contains", 2.0), data))
        self.assertTrue(holds(check("/s", "contains", "ell"), data))
        self.assertFalse(holds(check("/s", "contains", "xyz"), data))
        self.assertFalse(holds(check("/a", "contains", "b"), data))

    def test_missing_values_fail_every_test_but_ne(self) -> None:
        for op in ["eq", "gt", "gte", "lt", "lte", "contains"]:
            self.assertFalse(holds(check("/missing", op, 1), {}), op)
        self.assertTrue(holds(check("/missing", "ne", 1), {}))
        self.assertFalse(holds(check("/missing", "exists", True), {}))

    def test_all_names_the_first_failed_test(self) -> None:
        condition = parse_condition(
            {
                "all": [
                    {"pointer": "/amount", "op": "gt", "value": 100},
                    {"pointer": "/country", "op": "eq", "value": "NL"},
                ]
            }
        )
        self.assertIsNone(condition.check({"amount": 101, "country": "NL"}))
        self.assertEqual(
            condition.check({"amount": 5, "country": "DE"}), "/amount gt 100 failed (found 5)"
        )
        self.assertEqual(
            condition.check({"amount": 500}), '/country eq "NL" failed (found nothing)'
        )

    def test_any_lists_every_failed_test_and_groups_nest(self) -> None:
        condition = parse_condition(
            {
                "any": [
                    {"pointer": "/vip", "op": "eq", "value": True},
                    {
                        "all": [
                            {"pointer": "/amount", "op": "gte", "value": 10},
                            {"pointer": "/currency", "op": "eq", "value": "EUR"},
                        ]
                    },
                ]
            }
        )
        self.assertTrue(holds(condition, {"vip": True}))
        self.assertTrue(holds(condition, {"amount": 10, "currency": "EUR"}))
        self.assertEqual(
            condition.check({"amount": 10, "currency": "USD"}),
            'none of [/vip eq true failed (found nothing); /currency eq "EUR" failed (found "USD")]',
        )

    def test_long_found_values_are_cut(self) -> None:
        reason = check("/s", "eq", "y").check({"s": "x" * 500})
        assert reason is not None
        self.assertTrue(reason.endswith("...)"), reason)
        self.assertLess(len(reason), 120, reason)
        # Cut after 64 characters, not bytes.
        reason = check("/s", "eq", "y").check({"s": "é" * 100})
        self.assertEqual(reason, '/s eq "y" failed (found "' + "é" * 63 + '...)')

    def test_reasons_print_values_as_serde_json_does(self) -> None:
        data = decode_data(b'{"n": 1E-7, "big": 18446744073709551616, "z": -0}')
        self.assertEqual(
            check("/n", "eq", 2.5e-5).check(data), "/n eq 0.000025 failed (found 1e-7)"
        )
        self.assertEqual(
            check("/big", "lt", 0).check(data), "/big lt 0 failed (found 1.8446744073709552e+19)"
        )
        self.assertEqual(check("/z", "ne", 0).check(data), "/z ne 0 failed (found -0.0)")


class ParseTest(unittest.TestCase):
    def test_parse_errors_point_into_the_config(self) -> None:
        cases = [
            ([], "config: expected an object, found []"),
            ({}, "config: missing `pointer` (or `all`/`any`)"),
            ({"all": []}, "config: `all` needs at least one condition"),
            ({"all": {}}, "config: `all` must be a list of conditions"),
            (
                {"all": [{"pointer": "/a", "op": "eq", "value": 1}], "x": 1},
                "config: `all` must be the only key",
            ),
            (
                {"any": [{"pointer": "a", "op": "eq", "value": 1}]},
                'config at /any/0: pointer "a" must be empty or start with `/`',
            ),
            (
                {"all": [{"all": [{"pointer": "/a", "op": "like", "value": 1}]}]},
                'config at /all/0/all/0: unknown op "like" '
                "(expected one of eq, ne, gt, gte, lt, lte, exists, contains)",
            ),
            (
                {"pointer": "/a", "op": "gt", "value": [1]},
                "config: ordering ops take a number or string `value`",
            ),
            (
                {"pointer": "/a", "op": "exists", "value": 1},
                "config: `exists` takes a boolean `value`",
            ),
            ({"pointer": "/a", "op": "eq"}, "config: missing `value`"),
            (
                {"pointer": "/a", "op": "eq", "value": 1, "extra": 2},
                "config: unknown key `extra` (a condition is `all`, `any` or `pointer`/`op`/`value`)",
            ),
            ({"pointer": None, "op": "eq", "value": 1}, "config: `pointer` must be a string"),
            ({"pointer": "/a", "op": 1, "value": 1}, "config: `op` must be a string"),
            ({"pointer": "/a", "value": 1}, "config: missing `op`"),
            ({"pointer": "/a", "op": "gt"}, "config: missing `value`"),
            (
                {"pointer": "x\n\u00e9\u0301", "op": "eq", "value": 1},
                'config: pointer "x\\né\\u{301}" must be empty or start with `/`',
            ),
        ]
        for config, expected in cases:
            with self.subTest(config=config), self.assertRaises(ConditionError) as caught:
                parse_condition(config)
            self.assertEqual(str(caught.exception), expected)


if __name__ == "__main__":
    unittest.main()
