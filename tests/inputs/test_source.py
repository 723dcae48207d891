"""Reading input files: values, the line of every key, and located errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rpiaas.inputs.source import InputError, Source, describe, dotted, load, load_file

REFERENCE = Path("/work/shared/reference/rpiaas-config.example.json")


def src_of(text: str, file: str = "in.yaml") -> Source:
    raw: dict[Any, str] = {}
    data, lines = load(text, file, raw)
    return Source(data, lines, file, raw=raw)


def error(fn: Any, *args: Any) -> InputError:
    with pytest.raises(InputError) as exc:
        fn(*args)
    return exc.value


# ---------------------------------------------------------------- lines
def test_a_key_is_located_on_the_line_it_is_written_on() -> None:
    data, lines = load("a: 1\nb:\n  c:\n    - x\n    - d: 2\n      e: 3\n")
    assert data == {"a": 1, "b": {"c": ["x", {"d": 2, "e": 3}]}}
    assert lines[("a",)] == 1
    assert lines[("b",)] == 2  # the key's line, not the line its block value starts on
    assert lines[("b", "c")] == 3
    assert lines[("b", "c", 0)] == 4
    assert lines[("b", "c", 1)] == 5
    assert lines[("b", "c", 1, "e")] == 6


def test_line_of_falls_back_to_the_nearest_enclosing_key() -> None:
    s = src_of("top:\n  inner: {a: 1}\n")
    assert s.line_of(("top", "inner", "missing", "deeper")) == 2
    assert s.line_of(("nowhere",)) == 1


def test_an_empty_document_is_none() -> None:
    assert load("# only a comment\n") == (None, {})


def test_merge_keys_take_the_lines_of_the_anchor() -> None:
    text = "base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\n"
    data, lines = load(text)
    assert data["use"] == {"x": 1, "y": 3}  # explicit keys win over merged ones
    assert lines[("use", "y")] == 6
    assert lines[("use", "x")] == 2  # where x is written


def test_merge_of_a_list_of_mappings_the_first_wins() -> None:
    data, _ = load("a: &a {k: 1}\nb: &b {k: 2, j: 3}\nc:\n  <<: [*a, *b]\n")
    assert data["c"] == {"k": 1, "j": 3}


# ---------------------------------------------------------------- values
@pytest.mark.parametrize(("text", "value"), [
    ("1e3", 1000.0),        # YAML 1.1 would give the string '1e3'
    ("1.5e3", 1500.0),
    ("-2E-2", -0.02),
    ("2020-01-01", "2020-01-01"),  # dates stay strings (JSON has no dates)
    ("=", "="),
    ("0x10", 16),
    ("1_000", 1000),
    ("true", True),
    ("~", None),
    ("'10'", "10"),
])
def test_scalars(text: str, value: Any) -> None:
    assert load(f"v: {text}")[0] == {"v": value}


def test_the_text_of_a_scalar_yaml_read_as_something_else_is_kept() -> None:
    s = src_of("prefix: 10.10\nserial: 00001234\nmac: 10:20:30:40:50:59\npower: on\nn: 5\n")
    assert s.data["prefix"] == 10.1 and s.data["serial"] == 668  # what YAML 1.1 makes of them
    assert s.string(("prefix",), s.data["prefix"]) == "10.10"
    assert s.string(("serial",), s.data["serial"]) == "00001234"
    assert s.mac(("mac",), s.data["mac"]) == "10:20:30:40:50:59"
    assert s.choice(("power",), s.data["power"], ("on", "off")) == "on"
    assert s.integer(("n",), s.data["n"]) == 5
    assert s.with_text(s.data) == {"prefix": "10.10", "serial": "00001234",
                                   "mac": "10:20:30:40:50:59", "power": "on", "n": 5}


@settings(max_examples=200, deadline=None)
@example({"a": "1e3", "b": "10.10", "c": "on", "d": "00001234", "e": "10:20:30", "f": "NO"})
@example({"a": "2020-01-01", "b": "=", "c": "0x1F", "d": "1_000", "e": ".5", "f": "1.5e3"})
@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True),
                       st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
                       max_size=6))
def test_a_string_reads_back_as_written(d: dict[str, str]) -> None:
    """Whatever YAML makes of a plain scalar, asking for a string gives its text back."""
    s = src_of(yaml.safe_dump(d))  # (allow_unicode=True does not round-trip "\x85" in PyYAML)
    assert {k: s.string((k,), v) for k, v in (s.data or {}).items()} == d


# ---------------------------------------------------------------- syntax errors
@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("a: 1\nb: [1, 2\n", 3, "not valid YAML"),
    ("a: 1\nb:\n\tc: 1\n", 3, "not valid YAML: found character '\\t'"),
    ("a: 1\n---\nb: 2\n", 2, "expected a single document in the stream, but found another document"),
    ("a: 1\na: 2\n", 2, "a: duplicate key 'a'"),
    ("x:\n  y: !foo 3\n", 2, "x.y: unsupported tag !foo"),
    ("x:\n  y: !!binary aGVsbG8=\n", 2, "x.y: unsupported tag !!binary"),
    ("x: !!set {a}\n", 1, "x: unsupported tag !!set"),
    ("x:\n  y: !!int abc\n", 2, "x.y: 'abc' is not a valid !!int"),
    ("a: &a\n  - *a\n", 1, "a[0]: an alias refers to a node that contains it"),
    ("? [1, 2]\n: x\n", 1, "a key must be a plain value"),
    ("a:\n  <<: 3\n", 2, "<< merges a mapping"),
    ("a: 1\nb: \x07\n", 2, "not valid YAML: character '\\x07' is not allowed"),
])
def test_syntax_errors_are_located(text: str, line: int, fragment: str) -> None:
    e = error(load, text, "s.yaml")
    assert "\n" not in str(e)
    assert str(e).startswith(f"s.yaml:{line}: ")
    assert fragment in str(e)
    assert e.file == "s.yaml" and e.line == line


# ---------------------------------------------------------------- files
def test_the_original_config_json_with_tab_indentation_loads(tmp_path: Path) -> None:
    s = load_file(REFERENCE)
    assert s.data == json.loads(REFERENCE.read_text())
    text = REFERENCE.read_text().splitlines()
    # the line of the third cluster's first node's hostname is the line that says "master"
    assert '"master"' in text[s.lines[("clusters", 2, "nodes", 0, "hostname")] - 1]
    assert s.base == REFERENCE.parent


def test_json_is_read_strictly(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{\n  "a": [1, 2,],\n  "b": 1\n}\n')  # YAML would take the trailing comma
    e = error(load_file, f)
    assert str(e).startswith(f"{f}:2: not valid JSON")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert str(error(load_file, tmp_path / "nope.yaml")) == f"{tmp_path / 'nope.yaml'}: no such file"
    assert "is a directory" in str(error(load_file, tmp_path))
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"a: caf\xe9\n")
    assert str(error(load_file, bad)).startswith(f"{bad}: cannot read")


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    f = tmp_path / "bom.yaml"
    f.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_file(f).data == {"a": 1}


# ---------------------------------------------------------------- typed checks
@pytest.mark.parametrize(("method", "args", "value", "expected"), [
    ("integer", {"minimum": 1}, 3, 3),
    ("integer", {"minimum": 1}, 3.0, 3),
    ("integer", {"minimum": 0}, 0, 0),
    ("integer", {}, -7, -7),
    ("number", {"positive": True}, 2, 2.0),
    ("number", {"nonnegative": True}, 0, 0.0),
    ("number", {}, -1.5, -1.5),
    ("string", {}, "x", "x"),
    ("string", {}, 12, "12"),
    ("boolean", {}, False, False),
])
def test_typed_checks_accept(method: str, args: dict[str, Any], value: Any, expected: Any) -> None:
    s = Source({}, {}, "f.yaml")
    got = getattr(s, method)(("k",), value, **args)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("method", "args", "value", "message"), [
    ("integer", {"minimum": 1}, 0, "expected a positive integer, got 0"),
    ("integer", {"minimum": 1}, -1, "expected a positive integer, got -1"),
    ("integer", {"minimum": 0}, -1, "expected a non-negative integer, got -1"),
    ("integer", {"minimum": 5}, 4, "expected an integer >= 5, got 4"),
    ("integer", {}, 2.5, "expected an integer, got 2.5"),
    ("integer", {}, True, "expected an integer, got true"),
    ("integer", {}, "3", "expected an integer, got '3'"),
    ("integer", {}, float("inf"), "expected an integer, got inf"),
    ("number", {"positive": True}, 0, "expected a positive number, got 0"),
    ("number", {"nonnegative": True}, -0.1, "expected a non-negative number, got -0.1"),
    ("number", {}, float("nan"), "expected a number, got nan"),
    ("number", {}, 10**400, "expected a number, got 1000"),  # too large for a float
    ("number", {}, None, "expected a number, got nothing"),
    ("number", {}, [1], "expected a number, got a list"),
    ("string", {}, {"a": 1}, "expected a string, got a mapping"),
    ("string", {}, False, "expected a string, got false"),
    ("boolean", {}, "yes", "expected true or false, got 'yes'"),
    ("sequence", {}, "x", "expected a list, got 'x'"),
    ("mapping", {}, 3, "expected a mapping, got 3"),
    ("mapping", {"allowed": ("a", "b")}, {"c": 1}, "unknown key (expected one of: a, b)"),
    ("mapping", {"required": ("a",)}, {}, "missing key 'a'"),
    ("choice", {"options": ("x", "y")}, "z", "expected one of x, y, got 'z'"),
    ("mac", {}, "dc:a6:32:01:02", "expected a MAC address like dc:a6:32:01:02:03, got 'dc:a6:32:01:02'"),
    ("mac", {}, "dc-a6-32-01-02-03", "expected a MAC address"),
])
def test_typed_checks_reject(method: str, args: dict[str, Any], value: Any, message: str) -> None:
    s = Source({}, {("k",): 7}, "f.yaml")
    with pytest.raises(InputError) as exc:
        getattr(s, method)(("k",), value, **args)
    e = exc.value
    assert str(e).startswith(f"f.yaml:7: k{'.c' if 'unknown key' in message else ''}: {message}")


def test_mac_is_lower_cased() -> None:
    assert Source({}, {}, "f").mac(("m",), "DC:A6:32:0A:0B:0C") == "dc:a6:32:0a:0b:0c"


def test_describe_and_dotted() -> None:
    assert [describe(v) for v in ({}, [], None, "s", True, 3)] == [
        "a mapping", "a list", "nothing", "'s'", "true", "3"]
    assert dotted(("a", 0, "b", 12)) == "a[0].b[12]"
    assert dotted(()) == ""


# ---------------------------------------------------------------- overrides
def test_override_sets_nested_keys_and_list_items() -> None:
    s = src_of("a:\n  b: 1\n  l: [{x: 1}, {x: 2}]\n")
    s.override("a.b", 5)
    s.override("a.l.1.x", 9)
    s.override("new.deep.key", "v")
    assert s.data == {"a": {"b": 5, "l": [{"x": 1}, {"x": 9}]}, "new": {"deep": {"key": "v"}}}
    assert ("a", "l", 1, "x") in s.overridden


def test_errors_at_overridden_keys_name_the_option() -> None:
    s = src_of("a:\n  b: 1\n  c: 2\n")
    s.override("a.b", -1)
    s.override("seed", -3, origin="--seed")
    assert str(error(s.fail, ("a", "b"), "bad")) == "--set: a.b: bad"
    assert str(error(s.fail, ("seed",), "bad")) == "--seed: seed: bad"
    assert str(error(s.fail, ("a", "c"), "bad")) == "in.yaml:3: a.c: bad"  # not overridden


def test_an_override_of_a_mapping_covers_everything_under_it() -> None:
    s = src_of("a:\n  b: 1\n")
    s.override("a", {"b": 2})
    assert str(error(s.fail, ("a", "b"), "bad")) == "--set: a.b: bad"


def test_an_override_drops_the_stale_text_and_can_bring_its_own() -> None:
    s = src_of("prefix: 10.10\n")
    s.override("prefix", 10.2)
    assert s.string(("prefix",), s.data["prefix"]) == "10.2"
    s.override("prefix", 10.2, raw="10.20")
    assert s.string(("prefix",), s.data["prefix"]) == "10.20"


@pytest.mark.parametrize(("key", "message"), [
    ("", "--set: bad key path ''"),
    ("a..b", "--set: bad key path 'a..b'"),
    ("l.5", "--set: cannot set l.5: l is a list of 2 items"),
    ("l.x", "--set: cannot set l.x: l is a list of 2 items"),
    ("s.x", "--set: cannot set s.x: s is not a mapping ('text')"),
])
def test_bad_override_paths(key: str, message: str) -> None:
    s = src_of("l: [1, 2]\ns: text\n")
    assert str(error(s.override, key, 1)) == message


def test_override_on_an_empty_file_creates_the_mapping() -> None:
    s = src_of("")
    s.override("a.b", 1)
    assert s.data == {"a": {"b": 1}}


@pytest.mark.parametrize("tagged", ["!!int", "!!float", "!!bool", "!!int 0x", "!!float abc"])
def test_an_explicit_tag_with_a_bad_or_no_value_is_a_located_error(tmp_path: Path, tagged: str) -> None:
    from rpiaas.inputs import InputError, load_file

    path = tmp_path / "s.yaml"
    path.write_text(f"name: x\nseed: {tagged}\n")
    with pytest.raises(InputError) as err:
        load_file(path)
    assert str(err.value).startswith(f"{path}:2: seed: ") and "is not a valid !!" in str(err.value)
