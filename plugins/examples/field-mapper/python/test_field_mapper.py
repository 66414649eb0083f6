"""Unit tests of field-mapper's Python port, mirroring the Rust crate's
(`src/lib.rs`, `src/mapping.rs`, `src/pointer.rs`). Run with
`python3 -m unittest discover -s plugins/examples/field-mapper/python`."""

import unittest
from typing import List, Optional, Tuple

import gateway_sdk
from gateway_sdk import Deliver, Event, InvalidConfig, InvalidEvent, Target, encode_data
from mapping import Counts, MappingError, read_move, read_sets, rewrite
from pointer import Pointer, PointerError, read_pointer
from rust_json import MISSING, DeError, Field, Value, de_struct, de_vec
import field_mapper


def v2() -> Value:
    """`order.created` v2, as in schema-upgrade's README."""
    return {
        "order_id": "ord_1",
        "items": [{"sku": "A1", "qty": 2}],
        "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        "amount": {"value": 1250, "currency": "GBP"},
    }


def v2_to_v3() -> Value:
    """The README's v2 -> v3 config."""
    return {
        "event_type": "order.created",
        "from_version": 2,
        "to_version": 3,
        "moves": [
            {"from": "/amount/value", "to": "/total/minor_units", "required": True},
            {"from": "/amount/currency", "to": "/total/currency", "required": True},
        ],
        "remove": ["/amount"],
    }


def event(version: Optional[int], data: Value) -> Event:
    return Event("order.created", data, schema_version=version)


def target(wanted: Optional[int], config: Value) -> Target:
    return Target(config, schema_version=wanted)


def deliver(event: Event, target: Target) -> Event:
    verdict = field_mapper.handle(event, target)
    assert isinstance(verdict, Deliver), verdict
    return verdict.event


def p(text: str) -> Pointer:
    return Pointer.parse(text)


STEPS = [
    Field("moves", de_vec(read_move), default=list),
    Field("remove", de_vec(read_pointer), default=list),
    Field("set", read_sets, default=list),
]


def run(config: Value, data: Value) -> Tuple[Value, Counts]:
    """Runs the `moves`, `remove` and `set` of `config` on `data`; a bad
    config or a failed step raises with its message."""
    steps = de_struct(config, "Steps", STEPS)
    counts = rewrite(data, steps["moves"], steps["remove"], steps["set"])
    return data, counts


class HandleTest(unittest.TestCase):
    def test_maps_v2_to_v3_and_back(self) -> None:
        v3 = deliver(event(2, v2()), target(3, v2_to_v3()))
        self.assertEqual(v3.schema_version, 3)
        self.assertEqual(
            v3.data,
            {
                "order_id": "ord_1",
                "items": [{"sku": "A1", "qty": 2}],
                "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
                "total": {"minor_units": 1250, "currency": "GBP"},
            },
        )
        self.assertEqual(list(v3.data), ["order_id", "items", "customer", "total"])

        v3_to_v2 = {
            "event_type": "order.created",
            "from_version": 3,
            "moves": [
                {"from": "/total/minor_units", "to": "/amount/value", "required": True},
                {"from": "/total/currency", "to": "/amount/currency", "required": True},
            ],
            "remove": ["/total"],
        }
        back = deliver(v3, target(2, v3_to_v2))
        self.assertEqual(back.schema_version, 2)
        self.assertEqual(back.data, v2())
        self.assertEqual(list(back.data), list(v2()))

    def test_maps_v2_down_to_v1_as_far_as_pointers_go(self) -> None:
        v2_to_v1 = {
            "event_type": "order.created",
            "from_version": 2,
            "to_version": 1,
            "moves": [
                {"from": "/amount/value", "to": "/amount_cents", "required": True},
                {"from": "/amount/currency", "to": "/currency"},
                {"from": "/customer/email", "to": "/customer_email"},
            ],
            "remove": ["/amount"],
        }
        v1 = deliver(event(2, v2()), target(None, v2_to_v1))
        self.assertEqual(v1.schema_version, 1)
        self.assertEqual(
            v1.data,
            {
                "order_id": "ord_1",
                "items": [{"sku": "A1", "qty": 2}],
                "customer": {"first_name": "Ada", "last_name": "Lovelace"},
                "amount_cents": 1250,
                "currency": "GBP",
                "customer_email": "ada@example.com",
            },
        )

    def test_the_version_written_is_the_configs_the_endpoints_or_unchanged(self) -> None:
        config = {"to_version": 3}
        self.assertEqual(deliver(event(2, v2()), target(None, config)).schema_version, 3)
        self.assertEqual(deliver(event(2, v2()), target(3, config)).schema_version, 3)
        self.assertEqual(deliver(event(2, v2()), target(4, {})).schema_version, 4)
        unchanged = deliver(event(2, v2()), target(None, {}))
        self.assertEqual(unchanged.schema_version, 2)
        self.assertEqual(unchanged.data, v2())
        self.assertIsNone(deliver(event(None, v2()), target(None, {})).schema_version)

    def test_a_to_version_other_than_the_endpoints_is_invalid_config(self) -> None:
        with self.assertRaises(InvalidConfig) as caught:
            field_mapper.handle(event(2, v2()), target(4, v2_to_v3()))
        self.assertEqual(
            caught.exception, InvalidConfig("config: `to_version` is 3, but the endpoint wants v4")
        )

    def test_other_event_types_and_versions_are_invalid_events(self) -> None:
        paid = event(2, v2())
        paid.event_type = "order.paid"
        for wrong, expected in [
            (paid, "expected a order.created event, got order.paid"),
            (event(1, v2()), "expected schema version 2, got 1"),
            (event(None, v2()), "expected schema version 2, got none"),
        ]:
            with self.subTest(expected=expected), self.assertRaises(InvalidEvent) as caught:
                field_mapper.handle(wrong, target(3, v2_to_v3()))
            self.assertEqual(caught.exception, InvalidEvent(expected))

    def test_data_the_mapping_cannot_apply_to_is_an_invalid_event(self) -> None:
        with self.assertRaises(InvalidEvent) as caught:
            field_mapper.handle(event(2, {"order_id": "ord_1"}), target(3, v2_to_v3()))
        self.assertEqual(
            caught.exception,
            InvalidEvent("move /amount/value to /total/minor_units: the data has no /amount/value"),
        )
        with self.assertRaises(InvalidEvent) as caught:
            field_mapper.handle(event(3, {"total": 1250}), target(None, {"set": {"/total/scale": 2}}))
        self.assertEqual(
            caught.exception, InvalidEvent("set /total/scale: /total is a number, not an object")
        )

    def test_bad_config_is_invalid_config(self) -> None:
        for config, message in [
            (
                {"moves": [{"from": "amount", "to": "/total"}]},
                'config: pointer "amount" must start with `/`',
            ),
            ({"remove": "/amount"}, 'config: invalid type: string "/amount", expected a sequence'),
            ({"set": {"/a~9": 1}}, 'config: pointer "/a~9" has a `~` not followed by `0` or `1`'),
            ({"to_version": -1}, "config: invalid value: integer `-1`, expected u32"),
            (
                {"rename": {}},
                "config: unknown field `rename`, expected one of `event_type`, `from_version`, "
                "`to_version`, `moves`, `remove`, `set`",
            ),
            (["order.created", 2, 3], "config: expected an object"),
            ({"moves": [["/a"]]}, "config: invalid length 1, expected struct Move with 3 elements"),
        ]:
            with self.subTest(config=config), self.assertRaises(InvalidConfig) as caught:
                field_mapper.handle(event(2, v2()), target(None, config))
            self.assertEqual(caught.exception.message, message)

    def test_writes_data_nested_deeper_than_the_fast_encoder_goes(self) -> None:
        # A 500-token pointer (Rust writes this too); the data is written the
        # slow way already, since the C encoder would exhaust the stack.
        out = deliver(event(None, {}), target(None, {"set": {"/a" * 500: 1}}))
        self.assertEqual(encode_data(out.data), ('{"a":' * 500 + "1" + "}" * 500).encode())
        out = deliver(event(None, {"x": 1}), target(None, {"set": {"/a/b": 1}}))
        self.assertEqual(encode_data(out.data), b'{"x":1,"a":{"b":1}}')

    def test_logs_what_it_did(self) -> None:
        logs: List[str] = []
        gateway_sdk.set_log_sink(lambda level, message: logs.append(f"{level}: {message}"))
        try:
            deliver(event(2, v2()), target(3, v2_to_v3()))
        finally:
            gateway_sdk.set_log_sink(gateway_sdk._stderr_sink)
        self.assertEqual(logs, ["debug: moved 2 (skipped 0 missing), removed 1, set 0"])


class MappingTest(unittest.TestCase):
    def test_moves_then_removes_then_sets(self) -> None:
        config = {
            "moves": [
                {"from": "/amount/value", "to": "/total/minor_units"},
                {"from": "/missing", "to": "/elsewhere"},
            ],
            "remove": ["/amount", "/legacy", "/not/there"],
            "set": {"/total/scale": 2, "/total/minor_units": 0, "/meta/source": "v2"},
        }
        data, counts = run(config, {"amount": {"value": 1250}, "legacy": True, "order_id": "ord_1"})
        self.assertEqual(
            data,
            {"order_id": "ord_1", "total": {"minor_units": 0, "scale": 2}, "meta": {"source": "v2"}},
        )
        self.assertEqual(counts, Counts(moved=1, skipped=1, removed=2, set=3))

    def test_moves_run_in_order_and_may_nest_under_their_source(self) -> None:
        config = {"moves": [{"from": "/a", "to": "/a/inner"}, {"from": "/a/inner/x", "to": "/x"}]}
        data, _ = run(config, {"a": {"x": 1, "y": 2}})
        self.assertEqual(data, {"a": {"inner": {"y": 2}}, "x": 1})

    def test_a_required_move_with_nothing_to_move_is_an_error(self) -> None:
        config = {"moves": [{"from": "/amount/value", "to": "/total", "required": True}]}
        with self.assertRaises(MappingError) as caught:
            run(config, {"amount": {}})
        self.assertEqual(
            str(caught.exception), "move /amount/value to /total: the data has no /amount/value"
        )

    def test_writing_through_a_non_object_names_the_step_and_place(self) -> None:
        with self.assertRaises(MappingError) as caught:
            run({"set": {"/total/scale": 2}}, {"total": 1250})
        self.assertEqual(str(caught.exception), "set /total/scale: /total is a number, not an object")
        with self.assertRaises(MappingError) as caught:
            run({"moves": [{"from": "/a", "to": "/b/c~1d"}]}, {"a": 1, "b": "x"})
        self.assertEqual(
            str(caught.exception), "move /a to /b/c~1d: /b is a string, not an object"
        )

    def test_bad_pointers_and_keys_are_refused(self) -> None:
        for config, expected in [
            ({"moves": [{"from": "a", "to": "/b"}]}, 'pointer "a" must start with `/`'),
            (
                {"moves": [{"from": "/a", "to": "/b", "optional": True}]},
                "unknown field `optional`, expected one of `from`, `to`, `required`",
            ),
            ({"moves": [{"from": "/a"}]}, "missing field `to`"),
            ({"remove": ["/a~"]}, 'pointer "/a~" has a `~` not followed by `0` or `1`'),
            ({"set": {"total": 1}}, 'pointer "total" must start with `/`'),
            ({"set": []}, "invalid type: sequence, expected a map"),
            ({"moves": [{"from": "/a", "to": "/b", "required": 1}]}, "invalid type: integer `1`, expected a boolean"),
        ]:
            with self.subTest(config=config), self.assertRaises(DeError) as caught:
                run(config, {})
            self.assertEqual(str(caught.exception), expected)


class PointerTest(unittest.TestCase):
    def test_parses_and_prints_escapes(self) -> None:
        pointer = p("/a~1b/c~0d/")
        self.assertEqual(pointer.parents, ("a/b", "c~d"))
        self.assertEqual(pointer.last, "")
        self.assertEqual(str(pointer), "/a~1b/c~0d/")
        self.assertEqual(p("/~01").last, "~1")
        self.assertEqual(p("/~01").parents, ())

    def test_refuses_the_root_relative_pointers_and_bad_escapes(self) -> None:
        for text, expected in [
            ("", '"" must start with `/`'),
            ("amount", '"amount" must start with `/`'),
            ("/a~2", "`~` not followed by `0` or `1`"),
            ("/a~", "`~` not followed by `0` or `1`"),
        ]:
            with self.subTest(text=text), self.assertRaises(PointerError) as caught:
                Pointer.parse(text)
            self.assertIn(expected, str(caught.exception))

    def test_take_removes_members_keeping_the_order_of_the_rest(self) -> None:
        data = {"a": 1, "b": {"c": 2, "d": 3}, "e": 4}
        self.assertEqual(p("/b/c").take(data), 2)
        self.assertEqual(p("/a").take(data), 1)
        self.assertEqual(data, {"b": {"d": 3}, "e": 4})
        self.assertEqual(list(data), ["b", "e"])
        # A null found is a value, not nothing.
        self.assertIsNone(p("/n").take({"n": None}))

    def test_take_finds_nothing_on_missing_paths(self) -> None:
        original = {"a": "text", "list": [1, 2]}
        data = {"a": "text", "list": [1, 2]}
        for text in ["/x", "/x/y", "/a/b", "/list/2", "/list/-", "/list/01", "/list/x", "/list/+1", "/list/١"]:
            self.assertIs(p(text).take(data), MISSING, text)
        self.assertEqual(data, original)

    def test_take_and_insert_reach_into_existing_arrays(self) -> None:
        data = {"items": [{"sku": "A1"}, {"sku": "B2"}, 3]}
        self.assertEqual(p("/items/0/sku").take(data), "A1")
        p("/items/0/code").insert(data, "A1")
        p("/items/2").insert(data, 4)
        self.assertEqual(p("/items/1").take(data), {"sku": "B2"})
        self.assertEqual(data, {"items": [{"code": "A1"}, 4]})

    def test_insert_creates_parents_and_replaces_in_place(self) -> None:
        data = {"a": 1, "b": 2}
        p("/x/y/z").insert(data, True)
        p("/a").insert(data, "one")
        self.assertEqual(data, {"a": "one", "b": 2, "x": {"y": {"z": True}}})
        self.assertEqual(list(data), ["a", "b", "x"])

    def test_insert_through_a_non_object_names_the_place(self) -> None:
        data = {"total": 5, "items": [1], "n": None}
        for text, expected in [
            ("/total/scale", "/total is a number, not an object"),
            ("/n/x/y", "/n is null, not an object"),
            ("/items/1", '/items is an array of 1 and "1" is not one of its indexes'),
            ("/items/-/x", '/items is an array of 1 and "-" is not one of its indexes'),
        ]:
            with self.subTest(text=text), self.assertRaises(PointerError) as caught:
                p(text).insert(data, 0)
            self.assertEqual(str(caught.exception), expected)
        with self.assertRaises(PointerError) as caught:
            p("/a~1b").insert("plain", 0)
        self.assertEqual(str(caught.exception), "the data is a string, not an object")


if __name__ == "__main__":
    unittest.main()
