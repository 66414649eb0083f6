"""The Python counterpart of the Rust SDK (`plugins/sdk`): the event a
plugin receives and the target it is prepared for, with their JSON decoded;
the verdicts and errors it answers with; logging; and the decoding and
encoding the SDK's WIT glue does around a plugin's `handle`.

A plugin module defines `handle(event: Event, target: Target) -> Verdict`
(raising a `PluginError` when it cannot decide); `gateway_glue.entry`
connects it to the WIT world. Nothing here imports the WIT bindings, so
plugins and their unit tests run under plain CPython too (log lines then go
to stderr).

Every Python example plugin builds with this folder (`plugins/sdk-python`)
on its path.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple, TypeVar, Union

import rust_json
from rust_json import Value

T = TypeVar("T")


@dataclass
class Event:
    """An event as the gateway stored it, or as an earlier plugin in the
    chain left it. The defaults (empty id and timestamp, no schema version,
    no metadata) are handy in unit tests."""

    #: The event type, e.g. `order.created`.
    event_type: str = ""
    #: The payload (usually a dict). Object keys keep their order, so an
    #: event passed through unchanged keeps its shape.
    data: Value = None
    #: The event id, unique within the tenant (e.g. `evt_01h...`).
    id: str = ""
    #: The schema version of `data`, when the event type is versioned.
    schema_version: Optional[int] = None
    #: When the event happened, RFC 3339 (e.g. `2026-01-31T12:00:00Z`).
    timestamp: str = ""
    #: Extra facts about the event, such as `tenant-id`. A plugin may add or
    #: change entries; they travel down the chain but are not delivered.
    metadata: List[Tuple[str, str]] = field(default_factory=list)

    def get_metadata(self, key: str) -> Optional[str]:
        """The value of the first metadata entry named `key`."""
        return next((v for k, v in self.metadata if k == key), None)

    def set_metadata(self, key: str, value: str) -> None:
        """Sets the metadata entry `key` to `value`, replacing an existing
        entry of that name or adding one."""
        for i, (k, _) in enumerate(self.metadata):
            if k == key:
                self.metadata[i] = (key, value)
                return
        self.metadata.append((key, value))


@dataclass
class Target:
    """The endpoint an event is being prepared for, and this plugin's
    settings for it."""

    #: This plugin's configuration on this endpoint (`{}` when none was given).
    config: Value = field(default_factory=dict)
    #: The schema version the endpoint subscribes to, if it names one.
    schema_version: Optional[int] = None
    #: The endpoint id (e.g. `ep_01h...`).
    endpoint_id: str = ""


@dataclass(frozen=True)
class Deliver:
    """Deliver this event: the input unchanged, or rewritten."""

    event: Event


@dataclass(frozen=True)
class Drop:
    """Do not deliver the event to this endpoint; the reason is recorded in
    the event's status for the endpoint."""

    reason: str


Verdict = Union[Deliver, Drop]


class PluginError(Exception):
    """Why the plugin could not decide. The event then follows the
    endpoint's `on_plugin_error` policy (dead-letter by default)."""

    #: The WIT error case: `invalid-config`, `invalid-event` or `failed`.
    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginError) and type(self) is type(other) and self.message == other.message

    def __hash__(self) -> int:
        return hash((type(self), self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidConfig(PluginError):
    """The plugin's configuration is unusable; the message says why."""

    kind = "invalid-config"


class InvalidEvent(PluginError):
    """The event is not one this plugin can handle; the message says why."""

    kind = "invalid-event"


class Failed(PluginError):
    """Any other failure."""

    kind = "failed"


def parse_data(event: Event, read: Callable[[Value], T]) -> T:
    """Reads `event.data` with `read` (e.g. a `rust_json.de_*` reader); a
    mismatch is an `InvalidEvent` that says where (``data: missing field
    `amount_cents` ``)."""
    try:
        return read(event.data)
    except rust_json.DeError as error:
        raise InvalidEvent(f"data: {error}") from None


def parse_config(target: Target, read: Callable[[Value], T]) -> T:
    """Reads `target.config` with `read`; a mismatch is an `InvalidConfig`
    that says where."""
    try:
        return read(target.config)
    except rust_json.DeError as error:
        raise InvalidConfig(f"config: {error}") from None


# The glue: what the Rust SDK does between the WIT types and a plugin.


def decode_data(raw: bytes) -> Value:
    """An event's `data` bytes as JSON; `InvalidEvent` when they are not."""
    try:
        return rust_json.loads(raw)
    except rust_json.JsonError as error:
        raise InvalidEvent(f"data is not JSON: {error}") from None


def decode_config(raw: bytes) -> Value:
    """A target's `config` bytes as JSON (`{}` when empty); `InvalidConfig`
    when they are not JSON."""
    if not raw:
        return {}
    try:
        return rust_json.loads(raw)
    except rust_json.JsonError as error:
        raise InvalidConfig(f"config is not JSON: {error}") from None


def encode_data(data: Value) -> bytes:
    """A delivered event's `data` as the JSON bytes serde_json writes;
    `Failed` for a value that is not JSON."""
    try:
        return rust_json.dumps(data).encode("utf-8")
    except ValueError as error:
        raise Failed(f"encoding data: {error}") from None


# Logging, the one capability a plugin has. The gateway captures the lines
# with the call (the dry-run API shows them) and caps their number and size.

LogSink = Callable[[str, str], None]


def _stderr_sink(level: str, message: str) -> None:
    print(f"[{level}] {message}", file=sys.stderr)


_sink: LogSink = _stderr_sink


def set_log_sink(sink: LogSink) -> None:
    """Where log lines go: `app.py` sends them to the host's `log.write`."""
    global _sink
    _sink = sink


def log(level: str, message: str) -> None:
    """Records one line at `level`: `debug`, `info`, `warn` or `error`."""
    _sink(level, message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)
