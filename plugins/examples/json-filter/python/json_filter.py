"""`json-filter`: delivers an event only when its data meets the conditions
in the plugin's config, and drops it otherwise, naming the condition that
failed. See the README for the config format.
"""

from __future__ import annotations

from gateway_sdk import Deliver, Drop, Event, InvalidConfig, Target, Verdict
from parse import ConditionError, parse_condition


def handle(event: Event, target: Target) -> Verdict:
    """The plugin: one config-driven condition over the event's data."""
    try:
        condition = parse_condition(target.config)
    except ConditionError as error:
        raise InvalidConfig(str(error)) from None
    reason = condition.check(event.data)
    if reason is None:
        return Deliver(event)
    return Drop(f"json-filter: {reason}")
