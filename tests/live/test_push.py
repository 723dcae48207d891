"""The push schema and its checks (rpiaas/live/push.py): one schema, read by a real JSON Schema
validator and by the master alike; an end checked against its attempt on the master's clock."""

from __future__ import annotations

import math
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpiaas.live.push import (
    MAX_ERROR_CHARS,
    PUSH_SCHEMA,
    SKEW_S,
    TRUNCATED,
    PushRejected,
    check_attempt,
    check_document,
)
from rpiaas.master.openapi import openapi_document

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["running", "completed", "failed", "killed", "done", "", "r.1.0", "r 1", "a\n",
                     "x" * 129, "k" * 33]),
    st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                              st.integers(), max_size=2))
_FIELDS = [*PUSH_SCHEMA["properties"], "pid", "cpu_ids"]
_VALID = {"id": "r.1.0", "state": "completed", "kind": "sleep", "started_s": 1.0, "ended_s": 2.0,
          "exit_status": 0, "cpu_s": 0.5, "peak_rss_mb": 3.0, "error": None}
# a valid document with one to three fields replaced, added or left out
_docs = st.tuples(st.dictionaries(st.sampled_from(_FIELDS), _values, min_size=1, max_size=3),
                  st.sets(st.sampled_from(_FIELDS), max_size=2)).map(
    lambda t: {k: v for k, v in {**_VALID, **t[0]}.items() if k not in t[1]})
_VALIDATOR = jsonschema.Draft202012Validator(PUSH_SCHEMA)


@settings(max_examples=3000, deadline=None)
@given(doc=_docs)
def test_the_master_takes_exactly_what_the_published_schema_allows(doc: dict[str, Any]) -> None:
    try:
        checked = check_document(doc)
    except PushRejected as e:
        assert not _VALIDATOR.is_valid(doc), (doc, e)
        assert e.field in (*PUSH_SCHEMA["properties"], "body")
        assert len(str(e)) < 300
        return
    assert _VALIDATOR.is_valid(doc), doc
    assert checked.keys() == doc.keys()


def test_the_openapi_document_publishes_that_schema() -> None:
    assert openapi_document()["components"]["schemas"]["TaskEnded"] == PUSH_SCHEMA


@pytest.mark.parametrize(("doc", "message"), [
    ([1], "body: expected a task document (a JSON object), got list"),
    ({"state": "completed"}, "id: missing"),
    ({"id": "r.1.0", "state": "completed", "ended_s": math.inf}, "ended_s: expected number or null, got inf"),
    ({"id": "r.1.0", "state": "completed", "ended_s": 10**400}, "ended_s: expected number or null"),
    ({"id": "r.1.0", "state": "x" * 2**20}, "state: expected one of running, completed, failed, killed, "
                                            "got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."),
    ({"id": "r.1.0", "state": "failed", "cpu_s": True}, "cpu_s: expected number or null, got True"),
])
def test_a_document_outside_the_schema_names_its_field(doc: Any, message: str) -> None:
    with pytest.raises(PushRejected) as e:
        check_document(doc)
    assert str(e.value).startswith(message)


def test_a_long_error_is_cut_with_a_marker_and_the_rest_kept() -> None:
    doc: dict[str, Any] = {"id": "r.1.0", "state": "failed", "error": "é" * 100_000, "exit_status": 3.0, "pid": 7}
    checked = check_document(doc)
    assert len(checked["error"]) == MAX_ERROR_CHARS and checked["error"].endswith(TRUNCATED)
    assert checked["exit_status"] == 3 and isinstance(checked["exit_status"], int)
    assert checked["pid"] == 7 and len(doc["error"]) == 100_000  # the sent document is left as it was
    short = {"id": "r.1.0", "state": "failed", "error": "e" * MAX_ERROR_CHARS}
    assert check_document(short) == short


def _end(ended_s: float | None, **more: Any) -> dict[str, Any]:
    return {"id": "r.1.0", "state": "completed", "ended_s": ended_s, **more}


def test_an_end_lies_between_the_attempts_placing_and_now_on_the_masters_clock() -> None:
    placed, now = 1000.0, 1060.0
    same = float  # the node's clock is the master's
    check_attempt(_end(1030.0, started_s=1001.0, cpu_s=4 * 30.0), placed, now, same, 4)
    check_attempt(_end(placed - SKEW_S), placed, now, same, 4)  # the skew allowed, each side
    check_attempt(_end(now + SKEW_S), placed, now, same, 4)
    for doc, field in [(_end(placed - SKEW_S - 0.01), "ended_s"), (_end(now + SKEW_S + 0.01), "ended_s"),
                       (_end(1e300), "ended_s"), (_end(None), "ended_s"),
                       (_end(1030.0, started_s=1031.0), "started_s"),
                       (_end(1030.0, started_s=placed - SKEW_S - 1), "started_s"),
                       (_end(1030.0, cpu_s=4 * (30.0 + SKEW_S) + 0.01), "cpu_s")]:
        with pytest.raises(PushRejected) as e:
            check_attempt(doc, placed, now, same, 4)
        assert e.value.field == field, doc
    # a node whose clock is an hour ahead: its times are taken back to the master's first
    def ahead(t: float) -> float:
        return t - 3600.0

    check_attempt(_end(1030.0 + 3600, started_s=1001.0 + 3600), placed, now, ahead, 4)
    with pytest.raises(PushRejected, match=r"^ended_s: 1030 is outside the attempt"):
        check_attempt(_end(1030.0), placed, now, ahead, 4)
