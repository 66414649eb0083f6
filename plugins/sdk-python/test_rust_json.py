"""Unit tests of `rust_json`, the JSON codec shared by the Python example
plugins: every expected string here is what serde_json 1.0 (with
`preserve_order`) gives for the same input."""

import unittest

from rust_json import (
    MISSING,
    DeError,
    Field,
    JsonError,
    RawJson,
    _Parser,
    de_bool,
    de_i64,
    de_option,
    de_str,
    de_struct,
    de_u32,
    de_vec,
    debug_str,
    dumps,
    dumps_any_depth,
    format_float,
    loads,
    pointer,
    replace_at_pointer,
)

# (input, serde_json's output or error message)
CASES = [
    (
        b'{"b":1,"a":[true,false,null],"c":{"d":"\xc3\xa9\\u00e9\\ud83d\\ude00\\n"}}',
        '{"b":1,"a":[true,false,null],"c":{"d":"éé😀\\n"}}',
    ),
    (
        b" [1.0, 1e2, -0, -0.0, 1E-7, 0.00001, 1.5e300, 123456789012345678901234567890] ",
        "[1.0,100.0,-0.0,-0.0,1e-7,0.00001,1.5e+300,1.2345678901234568e+29]",
    ),
    (
        b"[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]",
        "[18446744073709551615,1.8446744073709552e+19,-9223372036854775808,-9.223372036854776e+18]",
    ),
    (b'{"a":1,"a":2,"b":3}', '{"a":2,"b":3}'),
    (
        b"[0.1, 2.2250738585072011e-308, 9007199254740993, 1.7976931348623157e308, "
        b"3.141592653589793238462643383279]",
        # serde_json's float parsing is not always correctly rounded (the
        # second number: Python reads 2.225073858507201e-308).
        "[0.1,2.2250738585072014e-308,9007199254740993,1.7976931348623157e+308,3.141592653589793]",
    ),
    (b'"\\u001f\\u007f\\b\\f\\t\\/"', '"\\u001f\x7f\\b\\f\\t/"'),
    (b"", "EOF while parsing a value at line 1 column 0"),
    (b" ", "EOF while parsing a value at line 1 column 1"),
    (b"nul", "EOF while parsing a value at line 1 column 3"),
    (b"[1,]", "trailing comma at line 1 column 4"),
    (b'{"a":1,}', "trailing comma at line 1 column 8"),
    (b'{"a" 1}', "expected `:` at line 1 column 6"),
    (b"[1 2]", "expected `,` or `]` at line 1 column 4"),
    (b"{1:2}", "key must be a string at line 1 column 2"),
    (b"NaN", "expected value at line 1 column 1"),
    (b"[Infinity]", "expected value at line 1 column 2"),
    (b"-", "EOF while parsing a value at line 1 column 1"),
    (b"01", "invalid number at line 1 column 2"),
    (b"1.", "EOF while parsing a value at line 1 column 2"),
    (b"1e", "EOF while parsing a value at line 1 column 2"),
    (b"[1e400]", "number out of range at line 1 column 6"),
    (b'"\\ud800"', "unexpected end of hex escape at line 1 column 8"),
    (b'"\\udc00"', "lone leading surrogate in hex escape at line 1 column 7"),
    (b'"\\ud800\\u0041"', "lone leading surrogate in hex escape at line 1 column 13"),
    (b'"\\x"', "invalid escape at line 1 column 3"),
    (b'"a\x01"', "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3"),
    (b'"\xff"', "invalid unicode code point at line 1 column 2"),
    (b"\xef\xbb\xbf{}", "expected value at line 1 column 1"),
    (b'{"a":1}\n x', "trailing characters at line 2 column 2"),
    (b"[\n1,\n\n2,\n]", "trailing comma at line 5 column 1"),
    (b"[" * 127 + b"]" * 127, "[" * 127 + "]" * 127),
    (b"[" * 128 + b"]" * 128, "recursion limit exceeded at line 1 column 128"),
    (b'{"a":' * 130 + b"1" + b"}" * 130, "recursion limit exceeded at line 1 column 636"),
    (b'{"a":"' + b"[" * 200 + b'"}', '{"a":"' + "[" * 200 + '"}'),
    # A too-deep value dropped by a duplicate key is still refused.
    (b'{"a":' + b"[" * 130 + b"]" * 130 + b',"a":1}', "recursion limit exceeded at line 1 column 132"),
    (b'{"a":"\\ud800","a":1}', "unexpected end of hex escape at line 1 column 13"),
]


class LoadsDumpsTest(unittest.TestCase):
    def test_reads_and_writes_as_serde_json(self) -> None:
        for raw, expected in CASES:
            for name, parse in (("loads", loads), ("exact parser", lambda r: _Parser(r).parse())):
                with self.subTest(raw=raw[:40], parser=name):
                    try:
                        got = dumps(parse(raw))
                    except JsonError as error:
                        got = str(error)
                    self.assertEqual(got, expected)

    def test_values_are_plain_python(self) -> None:
        value = loads(b'{"n": 1, "f": 1.0, "big": 18446744073709551616, "z": -0, "t": true}')
        self.assertEqual(value, {"n": 1, "f": 1.0, "big": 1.8446744073709552e19, "z": 0.0, "t": True})
        self.assertIs(type(value["n"]), int)
        self.assertIs(type(value["f"]), float)
        self.assertIs(type(value["z"]), float)

    def test_floats_are_written_in_serde_jsons_notation(self) -> None:
        for value, text in [
            (1.0, "1.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e-5, "0.00001"),
            (-1.5e-5, "-0.000015"),
            (1e-6, "1e-6"),
            (1.234e-9, "1.234e-9"),
            (1e-10, "1e-10"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ]:
            with self.subTest(value=value):
                self.assertEqual(format_float(value), text)
                self.assertEqual(dumps([value]), f"[{text}]")
                self.assertEqual(dumps_any_depth([value]), f"[{text}]")

    def test_what_is_not_json_is_refused(self) -> None:
        for value in [float("nan"), float("inf"), {1: 2}, object()]:
            with self.subTest(value=value), self.assertRaises(ValueError):
                dumps_any_depth(value)
        with self.assertRaises(ValueError):
            dumps(float("nan"))

    def test_any_depth(self) -> None:
        deep: object = 1
        for _ in range(5000):
            deep = {"a": [deep]}
        text = dumps_any_depth(deep)
        self.assertEqual(text, '{"a":[' * 5000 + "1" + "]}" * 5000)
        self.assertEqual(dumps(RawJson(text)), text)


class DebugStrTest(unittest.TestCase):
    def test_escapes_as_rusts_debug(self) -> None:
        self.assertEqual(debug_str('a"b\\c\n\t\r\0\x01\x7f'), '"a\\"b\\\\c\\n\\t\\r\\0\\u{1}\\u{7f}"')
        self.assertEqual(debug_str("é\u0301x"), '"é\\u{301}x"')
        self.assertEqual(debug_str("\u200b\u00a0\ufeff"), '"\\u{200b}\\u{a0}\\u{feff}"')
        self.assertEqual(debug_str("it's 😀 ✓"), "\"it's 😀 ✓\"")


class PointerTest(unittest.TestCase):
    def test_finds_values_as_serde_jsons_pointer(self) -> None:
        data = {"a": {"b/c": [1, {"~": None}]}, "": 0}
        self.assertIs(pointer(data, ""), data)
        self.assertEqual(pointer(data, "/a/b~1c/0"), 1)
        self.assertIsNone(pointer(data, "/a/b~1c/1/~0"))
        self.assertEqual(pointer(data, "/"), 0)
        for missing in ["a", "/x", "/a/b~1c/2", "/a/b~1c/01", "/a/b~1c/+1", "/a/b~1c/-", "/a/b~1c/0/x"]:
            self.assertIs(pointer(data, missing), MISSING, missing)

    def test_replaces_only_what_is_there(self) -> None:
        data = {"a": [1, 2]}
        self.assertTrue(replace_at_pointer(data, "/a/1", "x"))
        self.assertFalse(replace_at_pointer(data, "/a/2", "x"))
        self.assertFalse(replace_at_pointer(data, "/b", "x"))
        self.assertEqual(data, {"a": [1, "x"]})


class TypedReadingTest(unittest.TestCase):
    def test_serde_messages(self) -> None:
        for read, value, message in [
            (de_str, 1, "invalid type: integer `1`, expected a string"),
            (de_str, None, "invalid type: null, expected a string"),
            (de_bool, "x", 'invalid type: string "x", expected a boolean'),
            (de_u32, -1, "invalid value: integer `-1`, expected u32"),
            (de_u32, 4294967296, "invalid value: integer `4294967296`, expected u32"),
            (de_u32, 2.0, "invalid type: floating point `2.0`, expected u32"),
            (de_u32, True, "invalid type: boolean `true`, expected u32"),
            (de_i64, 9223372036854775808, "invalid value: integer `9223372036854775808`, expected i64"),
            (de_vec(de_str), {}, "invalid type: map, expected a sequence"),
            (de_option(de_u32), [], "invalid type: sequence, expected u32"),
        ]:
            with self.subTest(value=value), self.assertRaises(DeError) as caught:
                read(value)
            self.assertEqual(str(caught.exception), message)

    def test_structs_from_objects_and_arrays(self) -> None:
        fields = [Field("a", de_str), Field("b", de_u32, default=lambda: 7)]
        self.assertEqual(de_struct({"b": 1, "a": "x"}, "S", fields), {"a": "x", "b": 1})
        self.assertEqual(de_struct(["x"], "S", fields), {"a": "x", "b": 7})
        for value, message in [
            ({"b": 1}, "missing field `a`"),
            ({"a": "x", "c": 1}, "unknown field `c`, expected `a` or `b`"),
            ([], "invalid length 0, expected struct S with 2 elements"),
            (["x", 1, 2], "invalid length 3, expected fewer elements in array"),
            ("x", 'invalid type: string "x", expected struct S'),
        ]:
            with self.subTest(value=value), self.assertRaises(DeError) as caught:
                de_struct(value, "S", fields)
            self.assertEqual(str(caught.exception), message)


if __name__ == "__main__":
    unittest.main()
