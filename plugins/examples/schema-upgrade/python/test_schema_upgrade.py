"""Unit tests of schema-upgrade's Python port, mirroring the Rust crate's
(`src/lib.rs`, `src/upgrade.rs`). Run with
`python3 -m unittest discover -s plugins/examples/schema-upgrade/python`."""

import unittest

from gateway_sdk import Deliver, Event, InvalidConfig, InvalidEvent, Target, decode_data, encode_data
from rust_json import DeError, Value
import schema_upgrade
import upgrade


def v1_event() -> Event:
    return Event(
        "order.created",
        {"order_id": "ord_1", "customer_name": "Ada Lovelace", "amount_cents": 1250},
        schema_version=1,
    )


def run_upgrade(v1: Value) -> Value:
    """Reads `v1` and maps it with the default currency EUR, as the Rust
    tests' `upgrade` helper does."""
    return upgrade.to_v2(upgrade.read_order_v1(v1), "EUR")


class HandleTest(unittest.TestCase):
    def test_upgrades_and_sets_the_version(self) -> None:
        verdict = schema_upgrade.handle(
            v1_event(), Target({"default_currency": "GBP"}, schema_version=2)
        )
        assert isinstance(verdict, Deliver)
        self.assertEqual(verdict.event.schema_version, 2)
        self.assertEqual(
            verdict.event.data,
            {
                "order_id": "ord_1",
                "customer": {"first_name": "Ada", "last_name": "Lovelace"},
                "amount": {"value": 1250, "currency": "GBP"},
            },
        )

    def test_rejects_other_versions_types_and_targets(self) -> None:
        event = v1_event()
        event.schema_version = 2
        with self.assertRaises(InvalidEvent) as caught:
            schema_upgrade.handle(event, Target({}))
        self.assertEqual(caught.exception.message, "expected schema version 1, got 2")

        event = v1_event()
        event.event_type = "order.paid"
        with self.assertRaises(InvalidEvent) as caught:
            schema_upgrade.handle(event, Target({}))
        self.assertEqual(
            caught.exception.message, "expected a order.created event, got order.paid"
        )

        with self.assertRaises(InvalidConfig) as caught:
            schema_upgrade.handle(v1_event(), Target({}, schema_version=3))
        self.assertEqual(
            caught.exception.message,
            "this plugin upgrades order.created v1 to v2, but the endpoint wants v3",
        )

        with self.assertRaises(InvalidConfig) as caught:
            schema_upgrade.handle(v1_event(), Target({"currency": 1}))
        self.assertEqual(
            caught.exception.message,
            "config: unknown field `currency`, expected `default_currency`",
        )

    def test_data_that_is_not_v1_is_an_invalid_event(self) -> None:
        for data, message in [
            ({"customer_name": "Ada Lovelace"}, "data: missing field `amount_cents`"),
            (
                {"customer_name": "Ada", "amount_cents": "12.50"},
                'data: invalid type: string "12.50", expected i64',
            ),
            ([1, 2], "data: invalid type: sequence, expected struct OrderV1"),
        ]:
            event = v1_event()
            event.data = data
            with self.subTest(data=data), self.assertRaises(InvalidEvent) as caught:
                schema_upgrade.handle(event, Target({}))
            self.assertEqual(caught.exception.message, message)

    def test_no_version_is_taken_as_v1_and_no_wanted_version_is_fine(self) -> None:
        event = v1_event()
        event.schema_version = None
        verdict = schema_upgrade.handle(event, Target({}))
        assert isinstance(verdict, Deliver)
        self.assertEqual(verdict.event.schema_version, 2)
        self.assertEqual(verdict.event.data["amount"], {"value": 1250, "currency": "EUR"})

    def test_delivers_the_bytes_serde_json_writes(self) -> None:
        data = decode_data(
            b'{"order_id":"ord_1","customer_name":"  Zo\xc3\xab  van Dijk ",'
            b'"customer_email":"zoe@example.nl","amount_cents":-5,"note":1e-7,"x":null}'
        )
        verdict = schema_upgrade.handle(Event("order.created", data), Target({}))
        assert isinstance(verdict, Deliver)
        self.assertEqual(
            encode_data(verdict.event.data),
            '{"order_id":"ord_1","note":1e-7,"x":null,'
            '"customer":{"first_name":"Zoë","last_name":"van Dijk","email":"zoe@example.nl"},'
            '"amount":{"value":-5,"currency":"EUR"}}'.encode(),
        )


class UpgradeTest(unittest.TestCase):
    def test_renames_and_splits_fields_and_keeps_the_rest_in_order(self) -> None:
        v2 = run_upgrade(
            {
                "order_id": "ord_1",
                "customer_name": "Ada Lovelace",
                "customer_email": "ada@example.com",
                "amount_cents": 1250,
                "currency": "GBP",
                "items": [{"sku": "A1", "qty": 2}],
            }
        )
        self.assertEqual(
            v2,
            {
                "order_id": "ord_1",
                "items": [{"sku": "A1", "qty": 2}],
                "customer": {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": "ada@example.com",
                },
                "amount": {"value": 1250, "currency": "GBP"},
            },
        )
        self.assertEqual(list(v2), ["order_id", "items", "customer", "amount"])

    def test_missing_currency_takes_the_default(self) -> None:
        v2 = run_upgrade({"customer_name": "Ada Lovelace", "amount_cents": 5})
        self.assertEqual(v2["amount"], {"value": 5, "currency": "EUR"})
        self.assertNotIn("email", v2["customer"])
        # A null email or currency is the same as none.
        v2 = run_upgrade({"customer_name": "A", "amount_cents": 5, "customer_email": None, "currency": None})
        self.assertEqual(v2["customer"], {"first_name": "A", "last_name": ""})
        self.assertEqual(v2["amount"], {"value": 5, "currency": "EUR"})

    def test_names_split_at_the_first_space(self) -> None:
        self.assertEqual(upgrade.split_name("Ada Lovelace"), ("Ada", "Lovelace"))
        self.assertEqual(upgrade.split_name("  Vincent  van Gogh "), ("Vincent", "van Gogh"))
        self.assertEqual(upgrade.split_name("Plato"), ("Plato", ""))
        self.assertIsNone(upgrade.split_name("   "))
        # Unicode White_Space counts (as in Rust); U+001F does not.
        self.assertEqual(upgrade.split_name("Ada\u3000Lovelace"), ("Ada", "Lovelace"))
        self.assertEqual(upgrade.split_name("Ada\x1fLovelace"), ("Ada\x1fLovelace", ""))

    def test_rejects_data_that_is_not_v1(self) -> None:
        with self.assertRaises(DeError):
            run_upgrade({"amount_cents": 1})
        with self.assertRaises(DeError) as caught:
            run_upgrade({"customer_name": "A B", "amount_cents": 1.5})
        self.assertEqual(str(caught.exception), "invalid type: floating point `1.5`, expected i64")
        with self.assertRaises(upgrade.NotV1):
            run_upgrade({"customer_name": " ", "amount_cents": 1})
        with self.assertRaises(upgrade.NotV1) as caught:
            run_upgrade(
                {
                    "customer_name": "A B",
                    "amount_cents": 1,
                    "amount": {"value": 1, "currency": "EUR"},
                }
            )
        self.assertIn("v2 field `amount`", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
