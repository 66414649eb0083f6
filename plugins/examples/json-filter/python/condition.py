"""The filter's conditions and checking them against an event's data
(`parse.py` reads them from the config).

A condition is `{"all": [...]}`, `{"any": [...]}` or a test
`{"pointer": "/amount", "op": "gt", "value": 100}` on the value at a JSON
pointer into the data. Tests on a missing value fail, except `ne` (nothing
differs from everything) and `exists` with `"value": false`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from rust_json import MISSING, Value, dumps, is_number, pointer

#: The longest rendering of a found value in a drop reason.
MAX_FOUND_CHARS = 64


class Op(enum.Enum):
    """A comparison between the value found in the data and the config's
    value; the enum's values are the names in the config, in the order the
    error messages list them."""

    #: Equal (numbers compare by value: `1` equals `1.0`).
    EQ = "eq"
    #: Not equal, or missing.
    NE = "ne"
    #: Greater than (numbers with numbers, strings with strings).
    GT = "gt"
    #: Greater than or equal.
    GTE = "gte"
    #: Less than.
    LT = "lt"
    #: Less than or equal.
    LTE = "lte"
    #: The pointer resolves (or, with `"value": false`, does not).
    EXISTS = "exists"
    #: A string containing the given substring, or an array with an element
    #: equal to the given value.
    CONTAINS = "contains"

    def holds(self, found: Value, expected: Value) -> bool:
        """Whether the op holds between `found` (`MISSING` when the pointer
        found nothing) and the config's `expected`."""
        if found is MISSING:
            if self is Op.NE:
                return True
            if self is Op.EXISTS:
                return expected is False
            return False
        if self is Op.EQ:
            return json_eq(found, expected)
        if self is Op.NE:
            return not json_eq(found, expected)
        if self is Op.EXISTS:
            return expected is True
        if self is Op.CONTAINS:
            if isinstance(found, str) and isinstance(expected, str):
                return expected in found
            if isinstance(found, list):
                return any(json_eq(item, expected) for item in found)
            return False
        order = compare(found, expected)
        if order is None:
            return False
        if self is Op.GT:
            return order > 0
        if self is Op.GTE:
            return order >= 0
        if self is Op.LT:
            return order < 0
        return order <= 0  # Op.LTE


@dataclass(frozen=True)
class All:
    """Holds when every condition holds."""

    conditions: Tuple[Condition, ...]

    def check(self, data: Value) -> Optional[str]:
        """None when the condition holds for `data`, otherwise the reason it
        does not: here, the first failed condition's."""
        for condition in self.conditions:
            reason = condition.check(data)
            if reason is not None:
                return reason
        return None

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.conditions)) + ")"


@dataclass(frozen=True)
class Any:
    """Holds when at least one condition holds."""

    conditions: Tuple[Condition, ...]

    def check(self, data: Value) -> Optional[str]:
        """None when one condition holds, otherwise every reason."""
        reasons = []
        for condition in self.conditions:
            reason = condition.check(data)
            if reason is None:
                return None
            reasons.append(reason)
        return f"none of [{'; '.join(reasons)}]"

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.conditions)) + ")"


@dataclass(frozen=True)
class Test:
    """Holds when `op` holds between the value at `pointer` and `value`."""

    #: A JSON pointer into the data (`""` is the whole data).
    pointer: str
    #: The comparison.
    op: Op
    #: The operand (for `exists`, whether the value must exist).
    value: Value

    def check(self, data: Value) -> Optional[str]:
        """None when the test holds, otherwise `<test> failed (found ...)`."""
        found = pointer(data, self.pointer)
        if self.op.holds(found, self.value):
            return None
        return f"{self} failed (found {render_found(found)})"

    def __str__(self) -> str:
        return f"{self.pointer} {self.op.value} {dumps(self.value)}"


#: A parsed condition over an event's data.
Condition = Union[All, Any, Test]


def json_eq(a: Value, b: Value) -> bool:
    """JSON equality where numbers compare by value (`1 == 1.0`)."""
    if is_number(a) and is_number(b):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(
            key in b and json_eq(x, b[key]) for key, x in a.items()
        )
    # Null, booleans and strings; anything else differs (and `True` is not 1).
    return type(a) is type(b) and a == b


def compare(a: Value, b: Value) -> Optional[int]:
    """Orders numbers with numbers and strings with strings (by code point,
    as Rust orders UTF-8); negative, zero or positive, or None for anything
    else."""
    if is_number(a) and is_number(b):
        x, y = float(a), float(b)
    elif isinstance(a, str) and isinstance(b, str):
        x, y = a, b  # type: ignore[assignment]
    else:
        return None
    return (x > y) - (x < y)


def render_found(found: Value) -> str:
    """A found value for a drop reason: its JSON, cut after 64 characters."""
    if found is MISSING:
        return "nothing"
    text = dumps(found)
    if len(text) > MAX_FOUND_CHARS:
        return text[:MAX_FOUND_CHARS] + "..."
    return text
