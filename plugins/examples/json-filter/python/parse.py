"""Reading the filter's condition from the plugin's config, with errors
that say where in the config the problem is (`config at /all/1: ...`)."""

from __future__ import annotations

from typing import Dict

from condition import All, Any, Condition, Op, Test
from rust_json import MISSING, Value, debug_str, dumps, is_number

_TEST_KEYS = ("pointer", "op", "value")
_ORDERING = (Op.GT, Op.GTE, Op.LT, Op.LTE)


class ConditionError(ValueError):
    """The config is not a condition; the message says where and why."""


def parse_condition(config: Value) -> Condition:
    """Parses the plugin's config as a condition; the error says where in
    the config the problem is."""
    return _parse_at(config, "")


def _parse_at(config: Value, at: str) -> Condition:
    location = f"config at {at}" if at else "config"
    if not isinstance(config, dict):
        raise ConditionError(f"{location}: expected an object, found {dumps(config)}")
    for group, make in (("all", All), ("any", Any)):
        if group not in config:
            continue
        if len(config) != 1:
            raise ConditionError(f"{location}: `{group}` must be the only key")
        items = config[group]
        if not isinstance(items, list):
            raise ConditionError(f"{location}: `{group}` must be a list of conditions")
        if not items:
            raise ConditionError(f"{location}: `{group}` needs at least one condition")
        return make(tuple(_parse_at(item, f"{at}/{group}/{i}") for i, item in enumerate(items)))
    return _parse_test(config, location)


def _parse_test(config: Dict[str, Value], location: str) -> Test:
    for key in config:
        if key not in _TEST_KEYS:
            raise ConditionError(
                f"{location}: unknown key `{key}` "
                "(a condition is `all`, `any` or `pointer`/`op`/`value`)"
            )
    pointer = config.get("pointer", MISSING)
    if pointer is MISSING:
        raise ConditionError(f"{location}: missing `pointer` (or `all`/`any`)")
    if not isinstance(pointer, str):
        raise ConditionError(f"{location}: `pointer` must be a string")
    if pointer and not pointer.startswith("/"):
        raise ConditionError(
            f"{location}: pointer {debug_str(pointer)} must be empty or start with `/`"
        )
    name = config.get("op", MISSING)
    if name is MISSING:
        raise ConditionError(f"{location}: missing `op`")
    if not isinstance(name, str):
        raise ConditionError(f"{location}: `op` must be a string")
    try:
        op = Op(name)
    except ValueError:
        names = ", ".join(o.value for o in Op)
        raise ConditionError(
            f"{location}: unknown op {debug_str(name)} (expected one of {names})"
        ) from None
    value = config.get("value", MISSING)
    if op is Op.EXISTS:
        if value is MISSING:
            value = True
        elif not isinstance(value, bool):
            raise ConditionError(f"{location}: `exists` takes a boolean `value`")
    elif op in _ORDERING and value is not MISSING:
        if not (is_number(value) or isinstance(value, str)):
            raise ConditionError(f"{location}: ordering ops take a number or string `value`")
    elif value is MISSING:
        raise ConditionError(f"{location}: missing `value`")
    return Test(pointer, op, value)
