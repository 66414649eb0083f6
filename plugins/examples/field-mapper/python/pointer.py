"""RFC 6901 JSON pointers below the root of an event's data, and the three
things the mapper does with them: take a value out, write one in (creating
missing parent objects), and read the parsed form back as text.

A reference token steps into an object member, or into an element of an
existing array when the token is one of its indexes (`0`, `1`, ... without
leading zeros). Arrays never grow: `-` and indexes past the end name
nothing. The root pointer `""` is refused, since every mapping step moves,
removes or sets a member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from rust_json import MISSING, DeError, Value, de_str, debug_str


class PointerError(ValueError):
    """Pointer text that is not a pointer below the root; or a write through
    something that is not an object or an existing array element."""


@dataclass(frozen=True)
class Pointer:
    """A parsed pointer with at least one reference token, e.g.
    `/total/minor_units`."""

    #: The unescaped tokens leading to the container of the value named
    #: (`~1` already turned into `/`, `~0` into `~`).
    parents: Tuple[str, ...]
    #: The unescaped token naming the value in that container.
    last: str

    @staticmethod
    def parse(text: str) -> Pointer:
        """Parses `text`: `/` followed by tokens separated by `/`, where
        `~0` stands for `~` and `~1` for `/`."""
        if not text.startswith("/"):
            raise PointerError(f"pointer {debug_str(text)} must start with `/`")
        *parents, last = text[1:].split("/")
        tokens = [unescape(token) for token in parents + [last]]
        if any(token is None for token in tokens):
            raise PointerError(f"pointer {debug_str(text)} has a `~` not followed by `0` or `1`")
        return Pointer(tuple(tokens[:-1]), tokens[-1])  # type: ignore[arg-type]

    def take(self, data: Value) -> Value:
        """Removes the value this pointer names from `data` and returns it;
        `MISSING` (and `data` untouched) when there is none. An array
        element taken out shifts the later ones down."""
        current = data
        for token in self.parents:
            if isinstance(current, dict):
                current = current.get(token, MISSING)
            elif isinstance(current, list):
                i = index(token, len(current))
                current = MISSING if i is None else current[i]
            else:
                return MISSING
        if isinstance(current, dict):
            return current.pop(self.last, MISSING)
        if isinstance(current, list):
            i = index(self.last, len(current))
            return MISSING if i is None else current.pop(i)
        return MISSING

    def insert(self, data: Value, value: Value) -> None:
        """Writes `value` where this pointer names, replacing what is there.
        Missing members on the way become empty objects; a new member goes
        at the end of its object. Raises `PointerError`, naming the place
        (e.g. `/total is a number, not an object`), when the way passes
        through something other than an object or an existing array
        element."""
        current = data
        for depth, token in enumerate(self.parents):
            if isinstance(current, dict):
                current = current.setdefault(token, {})
            else:
                container, i = self._element(current, token, depth)
                current = container[i]
        if isinstance(current, dict):
            current[self.last] = value
        else:
            container, i = self._element(current, self.last, len(self.parents))
            container[i] = value

    def _element(self, container: Value, token: str, depth: int) -> Tuple[List[Value], int]:
        """The existing element `token` names in `container`, an array found
        after `depth` tokens (as the array and the index); a `PointerError`
        naming the place for anything else."""
        if isinstance(container, list):
            i = index(token, len(container))
            if i is None:
                raise PointerError(
                    f"{self._place(depth)} is an array of {len(container)} "
                    f"and {debug_str(token)} is not one of its indexes"
                )
            return container, i
        raise PointerError(f"{self._place(depth)} is {kind(container)}, not an object")

    def _place(self, depth: int) -> str:
        """The first `depth` tokens as pointer text, or `the data` for none."""
        if depth == 0:
            return "the data"
        return "".join(escape(token) for token in self.parents[:depth])

    def __str__(self) -> str:
        return "".join(escape(token) for token in self.parents + (self.last,))


def read_pointer(value: Value) -> Pointer:
    """A `Pointer` read from config text, as serde reads it (`try_from =
    "String"`): `DeError` for a value that is not a string or a pointer."""
    try:
        return Pointer.parse(de_str(value))
    except PointerError as error:
        raise DeError(str(error)) from None


def escape(token: str) -> str:
    """One token as pointer text: `/` then the token with `~` and `/`
    escaped."""
    return "/" + token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> Optional[str]:
    """Reads one token of pointer text (between two `/`): `~0` is `~`, `~1`
    is `/`; None for a `~` followed by anything else."""
    out = []
    chars = iter(token)
    for char in chars:
        if char == "~":
            escaped = next(chars, None)
            if escaped == "0":
                out.append("~")
            elif escaped == "1":
                out.append("/")
            else:
                return None
        else:
            out.append(char)
    return "".join(out)


def index(token: str, length: int) -> Optional[int]:
    """The array index `token` names in an array of `length`: decimal
    digits without leading zeros, below `length`."""
    digits = token != "" and token.isascii() and token.isdigit()
    canonical = token == "0" or not token.startswith("0")
    if not (digits and canonical):
        return None
    i = int(token)
    return i if i < length else None


def kind(value: Value) -> str:
    """How a value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
