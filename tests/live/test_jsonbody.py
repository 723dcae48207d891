"""Bounded JSON from the network: malformed, non-standard or too deeply nested documents are refused."""

from __future__ import annotations

import pytest

from rpiaas.live.jsonbody import MAX_JSON_DEPTH, depth, loads


def test_depth_counts_lists_and_objects() -> None:
    assert depth(1) == 0
    assert depth([]) == 1
    assert depth({"a": [1, {"b": []}]}) == 4


def test_documents_within_the_bound_are_read() -> None:
    doc = {"a": [1, 2.5, "x", None, True]}
    assert loads(b'{"a": [1, 2.5, "x", null, true]}') == doc
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert depth(loads(nested)) == MAX_JSON_DEPTH


@pytest.mark.parametrize(("raw", "message"), [
    ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), f"nested more than {MAX_JSON_DEPTH} deep"),
    ("[" * 100_000 + "]" * 100_000, f"nested more than {MAX_JSON_DEPTH} deep"),  # past the stack
    ('{"a": NaN}', "NaN is not JSON"),
    ("[Infinity]", "Infinity is not JSON"),
    ('{"a": 1', "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_documents_are_value_errors_with_a_message(raw: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loads(raw)


def test_a_smaller_bound_can_be_asked_for() -> None:
    with pytest.raises(ValueError, match="nested more than 2 deep"):
        loads("[[[]]]", max_depth=2)


def test_many_brackets_are_not_depth() -> None:
    """Brackets in strings, or many side by side, are no nesting: such documents are read."""
    assert loads('{"a": "' + "[{" * 100 + '"}') == {"a": "[{" * 100}
    wide = "[" + ",".join(["[[1]]"] * 100) + "]"
    assert depth(loads(wide)) == 3
    deep_in_wide = "[" + ",".join(["[]"] * 50 + ["[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH]) + "]"
    with pytest.raises(ValueError, match=f"nested more than {MAX_JSON_DEPTH} deep"):
        loads(deep_in_wide)
