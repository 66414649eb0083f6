"""The data rewrite the config describes: its `moves` in order, then its
`remove` list, then its `set` entries, each step seeing the data as the
previous one left it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from pointer import Pointer, PointerError, read_pointer
from rust_json import MISSING, DeError, Field, Value, de_bool, de_map, de_struct


class MappingError(ValueError):
    """The data is not one the mapping applies to; the message names the
    step and the place."""


@dataclass(frozen=True)
class Move:
    """A `moves` entry: take the value at `from_` out and write it at `to`."""

    #: Where the value is taken from.
    from_: Pointer
    #: Where it is written (missing parents are created, a value already
    #: there is replaced).
    to: Pointer
    #: Whether a missing `from` is an error rather than a skipped move.
    required: bool = False


MOVE_FIELDS = [
    Field("from", read_pointer),
    Field("to", read_pointer),
    Field("required", de_bool, default=lambda: False),
]


def read_move(value: Value) -> Move:
    """A `moves` entry, as serde reads `Move` (unknown keys refused)."""
    fields = de_struct(value, "Move", MOVE_FIELDS)
    return Move(fields["from"], fields["to"], fields["required"])


#: The `set` entries, `{"/pointer": value, ...}`, in the config's order.
Sets = List[Tuple[Pointer, Value]]


def read_sets(value: Value) -> Sets:
    """The `set` entries, as serde reads `Sets` (a map whose keys must be
    pointers)."""
    sets = []
    for text, member in de_map(value).items():
        try:
            sets.append((Pointer.parse(text), member))
        except PointerError as error:
            raise DeError(str(error)) from None
    return sets


@dataclass
class Counts:
    """What a rewrite did, for the log."""

    #: Moves whose `from` was found.
    moved: int = 0
    #: Moves skipped because their `from` was missing.
    skipped: int = 0
    #: `remove` pointers that found something.
    removed: int = 0
    #: `set` entries written.
    set: int = 0


def rewrite(data: Value, moves: Sequence[Move], remove: Sequence[Pointer], sets: Sets) -> Counts:
    """Rewrites `data` in place: the moves, then the removals, then the sets.
    A `MappingError` names the step and the place (e.g. `set /total/scale:
    /total is a number, not an object`); `data` is then partly rewritten
    and should be dropped."""
    counts = Counts()
    for move in moves:
        value = move.from_.take(data)
        if value is not MISSING:
            try:
                move.to.insert(data, value)
            except PointerError as error:
                raise MappingError(f"move {move.from_} to {move.to}: {error}") from None
            counts.moved += 1
        elif move.required:
            raise MappingError(f"move {move.from_} to {move.to}: the data has no {move.from_}")
        else:
            counts.skipped += 1
    for pointer in remove:
        if pointer.take(data) is not MISSING:
            counts.removed += 1
    for pointer, value in sets:
        try:
            pointer.insert(data, _copy(value))
        except PointerError as error:
            raise MappingError(f"set {pointer}: {error}") from None
        counts.set += 1
    return counts


def _copy(value: Value) -> Value:
    """A deep copy of a JSON value (each `set` writes its own copy, as the
    Rust `value.clone()` does)."""
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(member) for key, member in value.items()}
    return value
