"""`field-mapper`: a config-driven version transform. It moves, removes and
sets values in an event's data at JSON pointers, and writes the schema
version, so simple version transforms need no code (see the README for the
config). This module reads the config and checks the event and versions;
`mapping.py` rewrites the data, `pointer.py` walks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import gateway_sdk
from gateway_sdk import Deliver, Event, InvalidConfig, InvalidEvent, Target, Verdict, parse_config
from mapping import MappingError, Move, Sets, read_move, read_sets, rewrite
from pointer import Pointer, read_pointer
from rust_json import (
    FAST_ENCODE_DEPTH,
    MAX_DEPTH,
    Field,
    RawJson,
    Value,
    de_option,
    de_str,
    de_struct,
    de_u32,
    de_vec,
    dumps_any_depth,
)


@dataclass
class Config:
    """The plugin's config; every key is optional."""

    #: The only event type accepted, if given.
    event_type: Optional[str] = None
    #: The only schema version accepted, if given.
    from_version: Optional[int] = None
    #: The schema version written; the endpoint's when absent.
    to_version: Optional[int] = None
    #: Applied first, in order.
    moves: List[Move] = field(default_factory=list)
    #: Removed next; missing ones are fine.
    remove: List[Pointer] = field(default_factory=list)
    #: Written last, in order.
    set: Sets = field(default_factory=list)


CONFIG_FIELDS = [
    Field("event_type", de_option(de_str), default=lambda: None),
    Field("from_version", de_option(de_u32), default=lambda: None),
    Field("to_version", de_option(de_u32), default=lambda: None),
    Field("moves", de_vec(read_move), default=list),
    Field("remove", de_vec(read_pointer), default=list),
    Field("set", read_sets, default=list),
]


def read_config(value: Value) -> Config:
    """The config, as serde reads `Config` (unknown keys refused)."""
    return Config(**de_struct(value, "Config", CONFIG_FIELDS))


#: Deep data written by `handle`, never freed (see there).
_deep_data: List[Value] = []


def written_pointers(config: Config) -> List[Pointer]:
    """The pointers the config writes at: the moves' `to` and the sets'."""
    return [move.to for move in config.moves] + [pointer for pointer, _ in config.set]


def handle(event: Event, target: Target) -> Verdict:
    """The plugin: data at one schema version in, rewritten data at another
    out."""
    # serde would also read a list as the fields in order; refuse that.
    if not isinstance(target.config, dict):
        raise InvalidConfig("config: expected an object")
    config = parse_config(target, read_config)
    wanted = target.schema_version
    if config.to_version is not None and wanted is not None and config.to_version != wanted:
        raise InvalidConfig(
            f"config: `to_version` is {config.to_version}, but the endpoint wants v{wanted}"
        )
    written = config.to_version if config.to_version is not None else wanted
    if config.event_type is not None and config.event_type != event.event_type:
        raise InvalidEvent(f"expected a {config.event_type} event, got {event.event_type}")
    if config.from_version is not None and event.schema_version != config.from_version:
        found = "none" if event.schema_version is None else str(event.schema_version)
        raise InvalidEvent(f"expected schema version {config.from_version}, got {found}")
    try:
        counts = rewrite(event.data, config.moves, config.remove, config.set)
    except MappingError as error:
        raise InvalidEvent(str(error)) from None
    if written is not None:
        event.schema_version = written
    # Each write nests the data at most as much deeper as its pointer is
    # long. Data possibly too deep for the fast encoder is written now, and
    # kept: freeing it would recurse in C as deep (and this instance is
    # thrown away after the call anyway).
    if MAX_DEPTH + sum(len(p.parents) + 1 for p in written_pointers(config)) > FAST_ENCODE_DEPTH:
        _deep_data.append(event.data)
        event.data = RawJson(dumps_any_depth(event.data))
    gateway_sdk.debug(
        f"moved {counts.moved} (skipped {counts.skipped} missing), "
        f"removed {counts.removed}, set {counts.set}"
    )
    return Deliver(event)
