"""The v1 -> v2 mapping of `order.created`, as plain functions.

v1 `{"customer_name": "Ada Lovelace", "customer_email"?: "...",
"amount_cents": 1250, "currency"?: "EUR", ...}` becomes v2
`{..., "customer": {"first_name": "Ada", "last_name": "Lovelace",
"email"?: "..."}, "amount": {"value": 1250, "currency": "EUR"}}`; every
other field passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from rust_json import Value, de_i64, de_option, de_str, invalid_type, missing_field

#: Fields that v2 introduces; a v1 event must not have them.
V2_FIELDS = ("customer", "amount")

# Unicode White_Space, which Rust's `trim` and `char::is_whitespace` use
# (Python's `str.isspace` also counts U+001C..U+001F).
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


class NotV1(ValueError):
    """The data is not a plausible v1 order; the message says why."""


@dataclass
class OrderV1:
    """An `order.created` payload at schema version 1."""

    #: The customer's full name, given name first.
    customer_name: str
    #: The order total in minor units.
    amount_cents: int
    #: The customer's email address, if known.
    customer_email: Optional[str] = None
    #: The ISO 4217 currency, if given.
    currency: Optional[str] = None
    #: Every other field, passed through, in order.
    rest: Dict[str, Value] = field(default_factory=dict)


def read_order_v1(data: Value) -> OrderV1:
    """Reads v1 data as serde reads `OrderV1` (its known fields typed, the
    others collected in order); raises `DeError` with serde's message."""
    if not isinstance(data, dict):
        raise invalid_type(data, "struct OrderV1")
    known: Dict[str, Value] = {}
    rest: Dict[str, Value] = {}
    for key, value in data.items():
        if key == "customer_name":
            known[key] = de_str(value)
        elif key == "customer_email" or key == "currency":
            known[key] = de_option(de_str)(value)
        elif key == "amount_cents":
            known[key] = de_i64(value)
        else:
            rest[key] = value
    for required in ("customer_name", "amount_cents"):
        if required not in known:
            raise missing_field(required)
    return OrderV1(rest=rest, **known)


def to_v2(v1: OrderV1, default_currency: str) -> Dict[str, Value]:
    """Maps a v1 order to v2 data; `default_currency` applies when v1 names
    none. Raises `NotV1` when the input is not a plausible v1 order."""
    for v2_field in V2_FIELDS:
        if v2_field in v1.rest:
            raise NotV1(f"data has the v2 field `{v2_field}`; expected v1")
    names = split_name(v1.customer_name)
    if names is None:
        raise NotV1("data: `customer_name` is empty")
    first_name, last_name = names
    customer: Dict[str, Value] = {"first_name": first_name, "last_name": last_name}
    if v1.customer_email is not None:
        customer["email"] = v1.customer_email
    amount = {
        "value": v1.amount_cents,
        "currency": default_currency if v1.currency is None else v1.currency,
    }
    # The shared fields first, then the new ones (serde's `flatten` order).
    return {**v1.rest, "customer": customer, "amount": amount}


def split_name(full: str) -> Optional[Tuple[str, str]]:
    """Splits a full name at its first space: the first word is the first
    name, the rest (possibly empty) the last name. None for a blank name."""
    full = full.strip(WHITESPACE)
    if not full:
        return None
    for i, char in enumerate(full):
        if char in WHITESPACE:
            return full[:i], full[i + 1 :].lstrip(WHITESPACE)
    return full, ""
