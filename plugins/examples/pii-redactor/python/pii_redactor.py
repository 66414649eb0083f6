"""`pii-redactor`: blanks out the fields named in the config, then redacts
email addresses and card numbers in every string value of the event's
data, at any depth. The text scanning lives in `scanner.py`.
"""

from __future__ import annotations

from typing import List, Tuple

import gateway_sdk
from gateway_sdk import Deliver, Event, InvalidConfig, Target, Verdict, parse_config
from rust_json import Field, Value, de_str, de_struct, de_vec, debug_str, replace_at_pointer
import scanner

#: What a field named in the config is replaced with.
REDACTED_FIELD = "[redacted]"

#: The plugin's config: `pointers`, JSON pointers into the data whose values
#: are replaced whole, whatever their type (e.g. `/customer/phone`); missing
#: ones are skipped. Defaults to none; other keys are refused.
CONFIG_FIELDS = [Field("pointers", de_vec(de_str), default=list)]


def read_config(value: Value) -> List[str]:
    """The config's `pointers`."""
    pointers: List[str] = de_struct(value, "Config", CONFIG_FIELDS)["pointers"]
    return pointers


def handle(event: Event, target: Target) -> Verdict:
    """The plugin: data in, the same data with PII redacted out."""
    pointers = parse_config(target, read_config)
    for bad in pointers:
        if not bad.startswith("/"):
            raise InvalidConfig(f"config: pointer {debug_str(bad)} must start with `/`")
    fields = 0
    for path in pointers:
        if replace_at_pointer(event.data, path, REDACTED_FIELD):
            fields += 1
    event.data, matches = redact_strings(event.data)
    gateway_sdk.debug(f"redacted {fields} fields and {matches} matches")
    return Deliver(event)


def redact_strings(value: Value) -> Tuple[Value, int]:
    """`value` with every string inside redacted, at any depth (object keys
    are left alone), and how many emails and card numbers were replaced.
    Lists and dicts are changed in place."""
    if isinstance(value, str):
        return scanner.redact(value)
    count = 0
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i], found = redact_strings(item)
            count += found
    elif isinstance(value, dict):
        for key, item in value.items():
            value[key], found = redact_strings(item)
            count += found
    return value, count
