"""JSON read and written byte for byte as the Rust SDK does it (serde_json
with `preserve_order`), and serde's error messages for typed reading.

The Rust plugins and their Python ports must deliver identical bytes and
report identical errors, so this module pins down everything where Python's
`json` and serde_json differ:

- Reading (`loads`): serde_json refuses `NaN`/`Infinity`, lone surrogate
  escapes (`"\\ud800"`), numbers out of the f64 range and nesting deeper than
  127 arrays/objects; it turns integers outside u64/i64 and `-0` into floats,
  and rounds decimals its own (fast, not always correctly rounded) way. Errors
  read like serde_json's: `expected value at line 1 column 1`.
- Writing (`dumps`): compact, keys in insertion order, non-ASCII as UTF-8,
  floats as serde_json writes them (`1e-7`, not Python's `1e-07`;
  `0.00001`, not `1e-05`).
- `debug_str` is Rust's `{:?}` for a string, `unexpected`/`invalid_type`/...
  and `de_*` read config and data values with serde's error messages.

Values are plain Python: None, bool, int (always within i64/u64), float
(always finite), str, list, dict (insertion-ordered, like serde_json's
`preserve_order` maps). Duplicate keys keep the last value at the first
key's position, as in serde_json.

Valid input takes the fast path through the C `json` module (numbers are
read the serde_json way only when they could come out differently). Input
that is invalid, nests too deep or escapes lone surrogates goes through an
exact, slower port of serde_json's parser, which also writes the error
messages. Neither recurses deeper than 127 levels: in WebAssembly, CPython's
C recursion exhausts the call stack (a trap) somewhere below 1000 levels,
before its own recursion check would stop it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, TypeVar, Union

Value = Any
"""A JSON value: None, bool, int, float, str, list or dict."""

T = TypeVar("T")

# serde_json parses into u64, i64 or f64; integers outside these ranges
# become floats.
U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
_I32_MAX = (1 << 31) - 1
_I32_MIN = -(1 << 31)

#: serde_json's recursion limit: the 128th nested array or object is refused,
#: so values from `loads` nest at most this deep.
MAX_DEPTH = 127

# serde_json's table of powers of ten (Rust's literals 1e0..1e308, which are
# correctly rounded, like Python's).
_POW10 = [float(f"1e{i}") for i in range(309)]


class JsonError(ValueError):
    """JSON that serde_json would refuse; the message is serde_json's."""


class _NotSerdeJson(ValueError):
    """Raised from the fast path's hooks: let the exact parser decide."""


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def loads(raw: bytes) -> Value:
    """Parses `raw` (UTF-8 JSON) as `serde_json::from_slice::<Value>` does;
    raises `JsonError` with serde_json's message when it would fail."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _Parser(raw).parse()
    # Python accepts lone surrogate escapes and any depth (and in WebAssembly
    # its C parser exhausts the stack, a trap, on very deep input); both are
    # checked on the text, since a duplicate key may drop the culprit.
    if _has_lone_surrogate(text) or not _nests_within_limit(raw):
        return _Parser(raw).parse()
    decoder = _HOOKED if _HARD_NUMBER.search(text) else _PLAIN
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError):
        return _Parser(raw).parse()


def _fast_int(text: str) -> Union[int, float]:
    """An integer literal as serde_json reads it (`parse_integer`)."""
    if len(text) < 19:  # within i64
        return -0.0 if text == "-0" else int(text)
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if len(digits) > 20:
        return _fast_float(text)
    magnitude = int(digits)
    if magnitude > U64_MAX:
        return _fast_float(text)
    if not negative:
        return magnitude
    if magnitude == 0 or -magnitude < I64_MIN:
        # serde_json: `-0` and integers below i64 become floats.
        return -float(magnitude)
    return -magnitude


def _fast_float(text: str) -> float:
    """A number literal (already checked by the C scanner) as serde_json
    turns it into an f64: the digits into a u64 significand (digits past its
    range are dropped), then a multiplication or division by a power of
    ten."""
    if len(text) < 16 and "e" not in text and "E" not in text:
        # At most 15 digits: serde_json then divides two exact doubles (the
        # digits and a power of ten up to 1e15), one correctly rounded
        # operation, which gives what Python's correctly rounded `float` does.
        return float(text)
    negative = text.startswith("-")
    i = 1 if negative else 0
    n = len(text)
    significand = 0
    exponent = 0
    while i < n and "0" <= text[i] <= "9":
        digit = ord(text[i]) - 48
        if _u64_overflows(significand, digit):
            # parse_long_integer: the remaining integer digits only scale.
            while i < n and "0" <= text[i] <= "9":
                exponent += 1
                i += 1
            break
        significand = significand * 10 + digit
        i += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and "0" <= text[i] <= "9":
            digit = ord(text[i]) - 48
            if _u64_overflows(significand, digit):
                # parse_decimal_overflow: further digits are ignored.
                while i < n and "0" <= text[i] <= "9":
                    i += 1
                break
            significand = significand * 10 + digit
            exponent -= 1
            i += 1
    if i < n and text[i] in "eE":
        i += 1
        positive_exp = True
        if text[i] in "+-":
            positive_exp = text[i] == "+"
            i += 1
        exp = 0
        while i < n:
            digit = ord(text[i]) - 48
            if _i32_overflows(exp, digit):
                if significand != 0 and positive_exp:
                    raise _NotSerdeJson("number out of range")
                return -0.0 if negative else 0.0
            exp = exp * 10 + digit
            i += 1
        exponent = _saturate_i32(exponent + exp if positive_exp else exponent - exp)
    value = _f64_from_parts(significand, exponent)
    if value is None:
        raise _NotSerdeJson("number out of range")
    return -value if negative else value


def _refuse_constant(name: str) -> NoReturn:
    raise _NotSerdeJson(f"{name} is not JSON")


# Numbers are read the serde_json way only when some number could come out
# differently from Python's: one with an exponent, 16 or more digits and
# dots, or `-0`. (The search also looks into strings: at worst the slower
# decoder runs for nothing.)
_HARD_NUMBER = re.compile(
    r"(?:^|[\[,:])[ \t\n\r]*(?:-?[0-9]+(?:\.[0-9]+)?[eE]|-?[0-9.]{16}|-0(?![.0-9]))"
)
_PLAIN = json.JSONDecoder(parse_constant=_refuse_constant)
_HOOKED = json.JSONDecoder(
    parse_int=_fast_int, parse_float=_fast_float, parse_constant=_refuse_constant
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _u64_overflows(significand: int, digit: int) -> bool:
    # serde_json's `overflow!(significand * 10 + digit, u64::MAX)`.
    return significand >= U64_MAX // 10 and (
        significand > U64_MAX // 10 or digit > U64_MAX % 10
    )


def _i32_overflows(exp: int, digit: int) -> bool:
    return exp >= _I32_MAX // 10 and (exp > _I32_MAX // 10 or digit > _I32_MAX % 10)


def _saturate_i32(value: int) -> int:
    return max(_I32_MIN, min(_I32_MAX, value))


def _f64_from_parts(significand: int, exponent: int) -> Optional[float]:
    """serde_json's `f64_from_parts` (without `float_roundtrip`); None when
    the result is infinite ("number out of range")."""
    f = float(significand)
    while True:
        if abs(exponent) < len(_POW10):
            if exponent >= 0:
                f *= _POW10[exponent]
                if math.isinf(f):
                    return None
            else:
                f /= _POW10[-exponent]
            return f
        if f == 0.0:
            return f
        if exponent >= 0:
            return None
        f /= 1e308
        exponent += 308


# In valid JSON, backslashes only start escapes inside strings; surrogate
# pairs are tried first, so a surrogate matched alone is a lone one.
_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})|\\.",
    re.DOTALL,
)
_ESCAPE_BYTES = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'[]{}"')
_STRING_BYTES = re.compile(rb'"[^"]*"')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def _has_lone_surrogate(text: str) -> bool:
    """Whether valid JSON `text` escapes a surrogate outside a pair."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    return any(match.group(1) for match in _ESCAPE.finditer(text))


def _nests_within_limit(raw: bytes) -> bool:
    """Whether JSON `raw` is valid as far as brackets go and nests at most
    127 arrays and objects deep (fast, without parsing)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return True
    # Only the brackets outside strings, as `[{}[]]`.
    if b"\\" in raw:
        raw = _ESCAPE_BYTES.sub(b"", raw)
    skeleton = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _STRING_BYTES.sub(b"", skeleton)
    # Each pass takes away the innermost level.
    for _ in range(MAX_DEPTH):
        if not skeleton:
            return True
        shorter = _EMPTY_PAIR.sub(b"", skeleton)
        if len(shorter) == len(skeleton):
            return False  # mismatched brackets
        skeleton = shorter
    return not skeleton


# serde_json's error codes, as it prints them.
_EOF_LIST = "EOF while parsing a list"
_EOF_OBJECT = "EOF while parsing an object"
_EOF_STRING = "EOF while parsing a string"
_EOF_VALUE = "EOF while parsing a value"
_EXPECTED_COLON = "expected `:`"
_EXPECTED_LIST_COMMA_OR_END = "expected `,` or `]`"
_EXPECTED_OBJECT_COMMA_OR_END = "expected `,` or `}`"
_EXPECTED_IDENT = "expected ident"
_EXPECTED_VALUE = "expected value"
_INVALID_ESCAPE = "invalid escape"
_INVALID_NUMBER = "invalid number"
_NUMBER_OUT_OF_RANGE = "number out of range"
_INVALID_UNICODE = "invalid unicode code point"
_CONTROL_CHARACTER = "control character (\\u0000-\\u001F) found while parsing a string"
_KEY_MUST_BE_A_STRING = "key must be a string"
_LONE_LEADING_SURROGATE = "lone leading surrogate in hex escape"
_TRAILING_COMMA = "trailing comma"
_TRAILING_CHARACTERS = "trailing characters"
_UNEXPECTED_END_OF_HEX_ESCAPE = "unexpected end of hex escape"
_RECURSION_LIMIT = "recursion limit exceeded"

_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
_WHITESPACE = b" \n\t\r"


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


class _Parser:
    """A line-by-line port of serde_json's `Deserializer<SliceRead>` as it
    builds a `Value`: same acceptance, same values, same error messages and
    positions (`line`, and `column` in bytes)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.index = 0
        self.remaining_depth = 128

    # Reading bytes (SliceRead): -1 stands for the end of input.

    def peek(self) -> int:
        return self.raw[self.index] if self.index < len(self.raw) else -1

    def next(self) -> int:
        byte = self.peek()
        if byte >= 0:
            self.index += 1
        return byte

    def whitespace(self) -> int:
        """Skips whitespace; the next byte (not consumed), or -1."""
        while True:
            byte = self.peek()
            if byte < 0 or byte not in _WHITESPACE:
                return byte
            self.index += 1

    def error(self, code: str) -> JsonError:
        return self._error_at(self.index, code)

    def peek_error(self, code: str) -> JsonError:
        return self._error_at(min(len(self.raw), self.index + 1), code)

    def _error_at(self, index: int, code: str, column_back: int = 0) -> JsonError:
        start_of_line = self.raw.rfind(b"\n", 0, index) + 1
        line = 1 + self.raw.count(b"\n", 0, start_of_line)
        column = max(0, index - start_of_line - column_back)
        return JsonError(f"{code} at line {line} column {column}")

    # Values.

    def parse(self) -> Value:
        value = self.value()
        if self.whitespace() >= 0:
            raise self.peek_error(_TRAILING_CHARACTERS)
        return value

    def value(self) -> Value:
        byte = self.whitespace()
        if byte < 0:
            raise self.peek_error(_EOF_VALUE)
        if byte == ord("n"):
            self.index += 1
            self.ident(b"ull")
            return None
        if byte == ord("t"):
            self.index += 1
            self.ident(b"rue")
            return True
        if byte == ord("f"):
            self.index += 1
            self.ident(b"alse")
            return False
        if byte == ord("-"):
            self.index += 1
            return self.integer(positive=False)
        if _is_digit(byte):
            return self.integer(positive=True)
        if byte == ord('"'):
            self.index += 1
            return self.string()
        if byte == ord("["):
            self.enter()
            items = self.seq()
            self.remaining_depth += 1
            return items
        if byte == ord("{"):
            self.enter()
            members = self.map()
            self.remaining_depth += 1
            return members
        raise self.peek_error(_EXPECTED_VALUE)

    def enter(self) -> None:
        self.remaining_depth -= 1
        if self.remaining_depth == 0:
            raise self.peek_error(_RECURSION_LIMIT)
        self.index += 1

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            byte = self.next()
            if byte < 0:
                raise self.error(_EOF_VALUE)
            if byte != expected:
                raise self.error(_EXPECTED_IDENT)

    def seq(self) -> List[Value]:
        items: List[Value] = []
        first = True
        while True:
            byte = self.whitespace()
            if byte < 0:
                raise self.peek_error(_EOF_LIST)
            if byte == ord("]"):
                self.index += 1
                return items
            if first:
                first = False
            elif byte == ord(","):
                self.index += 1
                byte = self.whitespace()
                if byte == ord("]"):
                    raise self.peek_error(_TRAILING_COMMA)
                if byte < 0:
                    raise self.peek_error(_EOF_VALUE)
            else:
                raise self.peek_error(_EXPECTED_LIST_COMMA_OR_END)
            items.append(self.value())

    def map(self) -> Dict[str, Value]:
        members: Dict[str, Value] = {}
        first = True
        while True:
            byte = self.whitespace()
            if byte < 0:
                raise self.peek_error(_EOF_OBJECT)
            if byte == ord("}"):
                self.index += 1
                return members
            if first:
                first = False
                if byte != ord('"'):
                    raise self.peek_error(_KEY_MUST_BE_A_STRING)
            elif byte == ord(","):
                self.index += 1
                byte = self.whitespace()
                if byte == ord("}"):
                    raise self.peek_error(_TRAILING_COMMA)
                if byte < 0:
                    raise self.peek_error(_EOF_VALUE)
                if byte != ord('"'):
                    raise self.peek_error(_KEY_MUST_BE_A_STRING)
            else:
                raise self.peek_error(_EXPECTED_OBJECT_COMMA_OR_END)
            self.index += 1
            key = self.string()
            byte = self.whitespace()
            if byte == ord(":"):
                self.index += 1
            elif byte < 0:
                raise self.peek_error(_EOF_OBJECT)
            else:
                raise self.peek_error(_EXPECTED_COLON)
            members[key] = self.value()

    # Numbers (parse_integer and friends).

    def integer(self, positive: bool) -> Union[int, float]:
        byte = self.next()
        if byte < 0:
            raise self.error(_EOF_VALUE)
        if byte == ord("0"):
            if _is_digit(self.peek()):
                raise self.peek_error(_INVALID_NUMBER)
            return self.number(positive, 0)
        if ord("1") <= byte <= ord("9"):
            significand = byte - 48
            while True:
                byte = self.peek()
                if not _is_digit(byte):
                    return self.number(positive, significand)
                digit = byte - 48
                if _u64_overflows(significand, digit):
                    return self.long_integer(positive, significand)
                self.index += 1
                significand = significand * 10 + digit
        raise self.error(_INVALID_NUMBER)

    def number(self, positive: bool, significand: int) -> Union[int, float]:
        byte = self.peek()
        if byte == ord("."):
            return self.decimal(positive, significand, 0)
        if byte in (ord("e"), ord("E")):
            return self.exponent(positive, significand, 0)
        if positive:
            return significand
        if significand == 0 or -significand < I64_MIN:
            return -float(significand)
        return -significand

    def long_integer(self, positive: bool, significand: int) -> float:
        exponent = 0
        while True:
            byte = self.peek()
            if _is_digit(byte):
                self.index += 1
                exponent += 1
            elif byte == ord("."):
                return self.decimal(positive, significand, exponent)
            elif byte in (ord("e"), ord("E")):
                return self.exponent(positive, significand, exponent)
            else:
                return self.from_parts(positive, significand, exponent)

    def decimal(self, positive: bool, significand: int, exponent_before: int) -> float:
        self.index += 1
        exponent_after = 0
        while True:
            byte = self.peek()
            if not _is_digit(byte):
                break
            digit = byte - 48
            if _u64_overflows(significand, digit):
                # parse_decimal_overflow: the remaining digits are ignored.
                while _is_digit(self.peek()):
                    self.index += 1
                exponent = exponent_before + exponent_after
                if self.peek() in (ord("e"), ord("E")):
                    return self.exponent(positive, significand, exponent)
                return self.from_parts(positive, significand, exponent)
            self.index += 1
            significand = significand * 10 + digit
            exponent_after -= 1
        if exponent_after == 0:
            if self.peek() >= 0:
                raise self.peek_error(_INVALID_NUMBER)
            raise self.peek_error(_EOF_VALUE)
        exponent = exponent_before + exponent_after
        if self.peek() in (ord("e"), ord("E")):
            return self.exponent(positive, significand, exponent)
        return self.from_parts(positive, significand, exponent)

    def exponent(self, positive: bool, significand: int, starting_exp: int) -> float:
        self.index += 1
        positive_exp = True
        if self.peek() == ord("+"):
            self.index += 1
        elif self.peek() == ord("-"):
            self.index += 1
            positive_exp = False
        byte = self.next()
        if byte < 0:
            raise self.error(_EOF_VALUE)
        if not _is_digit(byte):
            raise self.error(_INVALID_NUMBER)
        exp = byte - 48
        while True:
            byte = self.peek()
            if not _is_digit(byte):
                break
            self.index += 1
            digit = byte - 48
            if _i32_overflows(exp, digit):
                # parse_exponent_overflow: infinity is an error, zero is fine.
                if significand != 0 and positive_exp:
                    raise self.error(_NUMBER_OUT_OF_RANGE)
                while _is_digit(self.peek()):
                    self.index += 1
                return 0.0 if positive else -0.0
            exp = exp * 10 + digit
        final = starting_exp + exp if positive_exp else starting_exp - exp
        return self.from_parts(positive, significand, _saturate_i32(final))

    def from_parts(self, positive: bool, significand: int, exponent: int) -> float:
        value = _f64_from_parts(significand, exponent)
        if value is None:
            raise self.error(_NUMBER_OUT_OF_RANGE)
        return value if positive else -value

    # Strings (SliceRead::parse_str_bytes with validation).

    def string(self) -> str:
        raw = self.raw
        scratch = bytearray()
        escaped = False
        start = self.index
        while True:
            while self.index < len(raw):
                byte = raw[self.index]
                if byte == 0x22 or byte == 0x5C or byte < 0x20:
                    break
                self.index += 1
            if self.index == len(raw):
                raise self.error(_EOF_STRING)
            byte = raw[self.index]
            if byte == 0x22:  # the closing quote
                content = bytes(scratch) + raw[start : self.index] if escaped else raw[start : self.index]
                self.index += 1
                try:
                    return content.decode("utf-8")
                except UnicodeDecodeError as error:
                    # Points at the first invalid byte, counting back from the
                    # closing quote (approximate after escapes, as in serde_json).
                    raise self._error_at(
                        self.index, _INVALID_UNICODE, len(content) - error.start
                    ) from None
            if byte == 0x5C:  # a backslash
                scratch += raw[start : self.index]
                escaped = True
                self.index += 1
                self.escape(scratch)
                start = self.index
            else:
                self.index += 1
                raise self.error(_CONTROL_CHARACTER)

    def escape(self, scratch: bytearray) -> None:
        byte = self.next()
        if byte < 0:
            raise self.error(_EOF_STRING)
        if byte == ord("u"):
            self.unicode_escape(scratch)
        elif byte in _ESCAPES:
            scratch += _ESCAPES[byte]
        else:
            raise self.error(_INVALID_ESCAPE)

    def hex_escape(self) -> int:
        if len(self.raw) - self.index < 4:
            self.index = len(self.raw)
            raise self.error(_EOF_STRING)
        digits = self.raw[self.index : self.index + 4]
        self.index += 4
        if any(b not in b"0123456789abcdefABCDEF" for b in digits):
            raise self.error(_INVALID_ESCAPE)
        return int(digits, 16)

    def unicode_escape(self, scratch: bytearray) -> None:
        first = self.hex_escape()
        if 0xDC00 <= first <= 0xDFFF:
            raise self.error(_LONE_LEADING_SURROGATE)
        if not 0xD800 <= first <= 0xDBFF:
            scratch += chr(first).encode("utf-8")
            return
        for expected in (ord("\\"), ord("u")):
            byte = self.peek()
            if byte < 0:
                raise self.error(_EOF_STRING)
            self.index += 1
            if byte != expected:
                raise self.error(_UNEXPECTED_END_OF_HEX_ESCAPE)
        second = self.hex_escape()
        if not 0xDC00 <= second <= 0xDFFF:
            raise self.error(_LONE_LEADING_SURROGATE)
        scratch += chr(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)).encode("utf-8")


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

_FAST_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)
# Python writes floats like serde_json except for exponents -5 to -9, which
# it writes as `e-05`...`e-09`; output with `e-0` anywhere is written again
# the slow way.
_PYTHON_ONLY_FLOAT = "e-0"
_encode_str: Callable[[str], str] = json.encoder.encode_basestring


class RawJson(str):
    """JSON text that `dumps` writes as it is when it is the whole value (as
    serde_json's `RawValue`): data already written with
    `dumps_any_depth`, say."""


#: How deep a value `dumps` trusts the C encoder with: in WebAssembly its
#: recursion exhausts the call stack (a trap) somewhere below 1000 levels.
#: Values from `loads` nest at most 127 deep; code that nests deeper writes
#: its data with `dumps_any_depth`.
FAST_ENCODE_DEPTH = 400


def dumps(value: Value) -> str:
    """`value` as serde_json's `to_string` writes it: compact, keys in order,
    non-ASCII unescaped, floats in serde_json's notation. Raises ValueError
    for what is not JSON (NaN, infinities, non-string keys, other types).
    `value` must not nest deeper than `FAST_ENCODE_DEPTH`."""
    if isinstance(value, RawJson):
        return str(value)
    try:
        text = _FAST_ENCODER.encode(value)
    except RecursionError:
        return dumps_any_depth(value)
    except TypeError as error:
        raise ValueError(str(error)) from None
    if _PYTHON_ONLY_FLOAT in text:
        return dumps_any_depth(value)
    return text


def dumps_any_depth(value: Value) -> str:
    """`dumps` without the C encoder: slower, but for values of any depth."""
    parts: List[str] = []
    # A stack of values still to write, and tuples of text to copy as is.
    stack: List[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            parts.append(item[0])
        elif item is None:
            parts.append("null")
        elif item is True:
            parts.append("true")
        elif item is False:
            parts.append("false")
        elif isinstance(item, int):
            parts.append(int.__repr__(item))
        elif isinstance(item, float):
            parts.append(format_float(item))
        elif isinstance(item, str):
            parts.append(_encode_str(item))
        elif isinstance(item, list):
            stack.append(("]",))
            for i in range(len(item) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append((",",))
            parts.append("[")
        elif isinstance(item, dict):
            stack.append(("}",))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                key, member = entries[i]
                if not isinstance(key, str):
                    raise ValueError(f"keys must be strings, not {type(key).__name__}")
                stack.append(member)
                stack.append((_encode_str(key) + ":",))
                if i:
                    stack.append((",",))
            parts.append("{")
        else:
            raise ValueError(f"{type(item).__name__} is not JSON")
    return "".join(parts)


def format_float(value: float) -> str:
    """A finite float as serde_json writes it (the zmij crate): the shortest
    digits that read back the same, in plain notation for decimal exponents
    -5 to 15 (`0.00001`, `1000000000000000.0`) and as `1.5e+16`/`1e-7`
    otherwise."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not JSON")
    text = repr(value)  # also the shortest round-trip digits
    mantissa, e, exponent = text.partition("e")
    if not e:
        return text  # plain notation: Python and serde_json agree
    exp = int(exponent)
    if exp == -5:  # plain in serde_json
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp)}"


# --------------------------------------------------------------------------
# JSON pointers (serde_json's `Value::pointer` and `pointer_mut`)
# --------------------------------------------------------------------------


class _Missing:
    """The type of `MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"


#: What `pointer` finds when nothing is there (None is JSON's null).
MISSING: Any = _Missing()


def pointer(value: Value, path: str) -> Value:
    """The value at the JSON pointer `path` (RFC 6901: `""` is `value`
    itself, `/a/0` member `a`, then its element 0), or `MISSING`."""
    if path == "":
        return value
    if not path.startswith("/"):
        return MISSING
    for token in path.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(token, MISSING)
            if value is MISSING:
                return MISSING
        elif isinstance(value, list):
            index = _array_index(token)
            if index is None or index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


def replace_at_pointer(value: Value, path: str, new: Value) -> bool:
    """Replaces the value at the JSON pointer `path` (which must not be the
    root `""`) with `new`; False, changing nothing, when there is none."""
    slash = path.rfind("/")
    if slash < 0:
        return False
    container = pointer(value, path[:slash])
    token = path[slash + 1 :].replace("~1", "/").replace("~0", "~")
    if isinstance(container, dict):
        if token not in container:
            return False
        container[token] = new
        return True
    if isinstance(container, list):
        index = _array_index(token)
        if index is None or index >= len(container):
            return False
        container[index] = new
        return True
    return False


def _array_index(token: str) -> Optional[int]:
    """serde_json's `parse_index`: decimal digits, no sign, no leading zero."""
    if not token.isascii() or not token.isdigit():
        return None
    if token.startswith("0") and len(token) != 1:
        return None
    return int(token)


# --------------------------------------------------------------------------
# Rust's `{:?}` for strings
# --------------------------------------------------------------------------

_DEBUG_ESCAPES = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"'}
# Categories Rust does not print as they are (core::unicode::printable):
# controls, formats, surrogates, private use, unassigned, separators.
_UNPRINTABLE = frozenset(["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"])
# Grapheme extenders that are not nonspacing or enclosing marks (Unicode's
# Other_Grapheme_Extend); Rust's Debug escapes every grapheme extender.
_OTHER_GRAPHEME_EXTEND = frozenset(
    [0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC0, 0x0CC2, 0x0CC7,
     0x0CC8, 0x0CCA, 0x0CCB, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57, 0x0DCF, 0x0DDF,
     0x1715, 0x1734, 0x1B35, 0x1B3B, 0x1B3D, 0x1B43, 0x1B44, 0x1BAA, 0x1BF2,
     0x1BF3, 0x200C, 0x302E, 0x302F, 0xA953, 0xA9C0, 0xFF9E, 0xFF9F, 0x1133E,
     0x111C0, 0x11235, 0x1134D, 0x11357, 0x113B8, 0x113C2, 0x113C5, 0x113C7, 0x113C8, 0x113C9,
     0x113CF, 0x114B0, 0x114BD, 0x115AF, 0x116B6, 0x11930, 0x1193D, 0x11F41, 0x16FF0,
     0x16FF1, 0x1D165, 0x1D166, 0x1D16D, 0x1D16E, 0x1D16F, 0x1D170, 0x1D171,
     0x1D172]
    + list(range(0xE0020, 0xE0080))
)


def debug_str(text: str) -> str:
    """`text` as Rust's `format!("{:?}", text)` writes it: quoted, with `\\"`,
    `\\\\`, `\\n`, `\\r`, `\\t`, `\\0`, and `\\u{..}` for characters Rust does
    not print as they are (controls, separators other than the space,
    format characters, combining marks, unassigned code points)."""
    out = ['"']
    for char in text:
        if char in _DEBUG_ESCAPES:
            out.append(_DEBUG_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        elif _escaped_in_debug(char):
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _escaped_in_debug(char: str) -> bool:
    category = unicodedata.category(char)
    return (
        category in _UNPRINTABLE
        or category in ("Mn", "Me")
        or ord(char) in _OTHER_GRAPHEME_EXTEND
    )


# --------------------------------------------------------------------------
# Typed reading, with serde's messages
# --------------------------------------------------------------------------


class DeError(ValueError):
    """A value of the wrong shape; the message is serde's (e.g. ``invalid
    type: string "5", expected u32``)."""


def is_number(value: Value) -> bool:
    """Whether `value` is a JSON number (an int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def unexpected(value: Value) -> str:
    """How serde_json names a value it did not expect: ``integer `5` ``,
    ``string "x"``, ``sequence``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{format_float(value)}`"
    if isinstance(value, str):
        return f"string {debug_str(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def invalid_type(value: Value, expected: str) -> DeError:
    return DeError(f"invalid type: {unexpected(value)}, expected {expected}")


def invalid_value(value: Value, expected: str) -> DeError:
    return DeError(f"invalid value: {unexpected(value)}, expected {expected}")


def missing_field(name: str) -> DeError:
    return DeError(f"missing field `{name}`")


def unknown_field(name: str, expected: Sequence[str]) -> DeError:
    if not expected:
        return DeError(f"unknown field `{name}`, there are no fields")
    if len(expected) == 1:
        names = f"`{expected[0]}`"
    elif len(expected) == 2:
        names = f"`{expected[0]}` or `{expected[1]}`"
    else:
        names = "one of " + ", ".join(f"`{n}`" for n in expected)
    return DeError(f"unknown field `{name}`, expected {names}")


def de_str(value: Value) -> str:
    """A `String`."""
    if isinstance(value, str):
        return value
    raise invalid_type(value, "a string")


def de_bool(value: Value) -> bool:
    """A `bool`."""
    if isinstance(value, bool):
        return value
    raise invalid_type(value, "a boolean")


def _de_int(value: Value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(value, name)
    if not low <= value <= high:
        raise invalid_value(value, name)
    return value


def de_u32(value: Value) -> int:
    """A `u32`."""
    return _de_int(value, "u32", 0, (1 << 32) - 1)


def de_i64(value: Value) -> int:
    """An `i64`."""
    return _de_int(value, "i64", I64_MIN, I64_MAX)


def de_option(read: Callable[[Value], T]) -> Callable[[Value], Optional[T]]:
    """An `Option<T>`: null is None, anything else is read as a `T`."""

    def read_option(value: Value) -> Optional[T]:
        return None if value is None else read(value)

    return read_option


def de_vec(read: Callable[[Value], T]) -> Callable[[Value], List[T]]:
    """A `Vec<T>`."""

    def read_vec(value: Value) -> List[T]:
        if not isinstance(value, list):
            raise invalid_type(value, "a sequence")
        return [read(item) for item in value]

    return read_vec


def de_map(value: Value) -> Dict[str, Value]:
    """A `Map<String, Value>`."""
    if not isinstance(value, dict):
        raise invalid_type(value, "a map")
    return value


@dataclass(frozen=True)
class Field:
    """A field of a struct read with `de_struct`: its name, how to read its
    value, and its default (a factory) when it may be left out."""

    name: str
    read: Callable[[Value], Any]
    default: Optional[Callable[[], Any]] = None


def de_struct(value: Value, name: str, fields: Sequence[Field]) -> Dict[str, Any]:
    """A struct with `#[derive(Deserialize)]` and
    `#[serde(deny_unknown_fields)]`, read into a dict of its fields. Like
    serde, it takes an object (fields in any order, unknown ones refused) or
    an array (fields in order, missing trailing ones defaulted)."""
    if isinstance(value, dict):
        by_name = {field.name: field for field in fields}
        found: Dict[str, Any] = {}
        for key, member in value.items():
            field = by_name.get(key)
            if field is None:
                raise unknown_field(key, [f.name for f in fields])
            found[key] = field.read(member)
        for field in fields:
            if field.name not in found:
                if field.default is None:
                    raise missing_field(field.name)
                found[field.name] = field.default()
        return {field.name: found[field.name] for field in fields}
    if isinstance(value, list):
        found = {}
        for index, field in enumerate(fields):
            if index < len(value):
                found[field.name] = field.read(value[index])
            elif field.default is not None:
                found[field.name] = field.default()
            else:
                plural = "" if len(fields) == 1 else "s"
                raise DeError(
                    f"invalid length {index}, expected struct {name} "
                    f"with {len(fields)} element{plural}"
                )
        if len(value) > len(fields):
            raise DeError(f"invalid length {len(value)}, expected fewer elements in array")
        return found
    raise invalid_type(value, f"struct {name}")
