"""`schema-upgrade`: rewrites `order.created` events from schema version 1 to
version 2 (see the README for both shapes). The mapping itself lives in
`upgrade.py` as plain functions; this module checks versions and config.
"""

from __future__ import annotations

from gateway_sdk import Deliver, Event, InvalidConfig, InvalidEvent, Target, Verdict, parse_config, parse_data
from rust_json import Field, Value, de_str, de_struct
import upgrade

#: The event type this plugin upgrades.
EVENT_TYPE = "order.created"
#: The version it reads.
FROM_VERSION = 1
#: The version it writes.
TO_VERSION = 2

#: The plugin's config: `{"default_currency": "EUR"}`, the currency of v1
#: orders that do not name one. Every field has a default; others are refused.
CONFIG_FIELDS = [Field("default_currency", de_str, default=lambda: "EUR")]


def read_config(value: Value) -> str:
    """The config's `default_currency`."""
    currency: str = de_struct(value, "Config", CONFIG_FIELDS)["default_currency"]
    return currency


def handle(event: Event, target: Target) -> Verdict:
    """The plugin: `order.created` v1 in, v2 out."""
    default_currency = parse_config(target, read_config)
    wanted = target.schema_version
    if wanted is not None and wanted != TO_VERSION:
        raise InvalidConfig(
            f"this plugin upgrades {EVENT_TYPE} v{FROM_VERSION} to v{TO_VERSION}, "
            f"but the endpoint wants v{wanted}"
        )
    if event.event_type != EVENT_TYPE:
        raise InvalidEvent(f"expected a {EVENT_TYPE} event, got {event.event_type}")
    version = event.schema_version
    if version is not None and version != FROM_VERSION:
        raise InvalidEvent(f"expected schema version {FROM_VERSION}, got {version}")
    v1 = parse_data(event, upgrade.read_order_v1)
    try:
        event.data = upgrade.to_v2(v1, default_currency)
    except upgrade.NotV1 as error:
        raise InvalidEvent(str(error)) from None
    event.schema_version = TO_VERSION
    return Deliver(event)
