"""Text made from plain values: floats in bulk, task rows a column at a time, event-log lines."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rpiaas.core.eventlog import (
    ARRIVE,
    FINISH,
    START,
    EventRecords,
    LineLog,
    event_lines,
    float_texts,
)
from rpiaas.model import RARE_DEFAULTS
from rpiaas.rundir.stream import TaskRows, Totals


def test_floats_in_bulk_are_their_repr_for_every_exponent_sign_and_special_value() -> None:
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**64, size=300_000, dtype=np.uint64)
    values = bits.view(np.float64)  # every exponent and sign, infinities and NaN among them
    extra = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-05, 5e-324, 1e16, 9999999999999998.0, 1e22,
             -1e-300, float("inf"), float("-inf"), float("nan"), 123456789.125, 1.0, 100000.0]
    floats = [*values.tolist(), *extra, *rng.exponential(1000, 50_000).tolist()]
    assert float_texts(floats) == [repr(x) for x in floats]
    assert float_texts(extra) == [repr(x) for x in extra]  # (fewer than the bulk minimum)


def test_floats_without_orjson_are_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import fails
    floats = np.random.default_rng(1).exponential(5, 1000).tolist()
    assert float_texts(floats) == [repr(x) for x in floats]


def _record(i: int, state: str, rng: np.random.Generator) -> tuple[object, ...]:
    a = float(rng.exponential(100)) * i
    s = a + float(rng.choice([0.0, rng.exponential(20)])) if state != "rejected" else -1.0
    e = s + float(rng.choice([0.0, 5.0, rng.exponential(50)])) if state in ("completed", "failed") else -1.0
    tenant = str(rng.choice(["", "lab", 'a,b', 'say "hi"']))
    rare = {"placed": (0, 2) if i % 7 == 0 and s >= 0 else (),
            "reason": "exit status 3" if state == "failed" else "",
            "cpu_s": None if i % 3 else 1.5, "peak_mem_mb": None if i % 5 else 12.25,
            "pull_s": None if i % 4 else 3.5}
    # the row writer gets a task's rare fields as the task keeps them: only those set, or None
    set_ = {k: v for k, v in rare.items() if v != RARE_DEFAULTS[k]}
    return (i, a, s, e, int(rng.integers(0, 3)) if s >= 0 else -1, state, int(rng.integers(1, 5)),
            int(rng.integers(1, 4096)), float(rng.exponential(60)), "cpu", tenant, 1, set_ or None)


@pytest.mark.parametrize("mixed", [False, True])
def test_rows_a_column_at_a_time_are_the_rows_one_by_one(mixed: bool) -> None:
    """Completed tasks only (the bulk path: runs of zero seconds, tenants to quote, tiny
    waits) or a mix with every other state (one by one): the same text and the same totals."""
    rng = np.random.default_rng(7)
    states = ["completed", "rejected", "failed", "queued", "running", "killed"] if mixed else ["completed"]
    records = [_record(i, str(rng.choice(states)), rng) for i in range(2000)]
    # run 0, wait 1e-05
    records.append((2000, 1.0, 1.00001, 1.00001, 0, "completed", 1, 1, 1e-7, "cpu", "", 1, None))
    if not mixed:
        records = [r for r in records if r[5] == "completed"]
    names = ["n0", "n1", "n2"]
    bulk_totals, one_totals = Totals(), Totals()
    bulk = TaskRows(bulk_totals, names)
    one = TaskRows(one_totals, names)
    text = bulk.text(records[:1000]) + bulk.text(records[1000:])
    assert text == one._one_by_one(records[:1000]) + one._one_by_one(records[1000:])
    assert bulk_totals.state() == one_totals.state()
    assert bulk_totals.waits.tobytes() == one_totals.waits.tobytes()
    assert text.count("\n") == len(records)


def test_totals_go_on_from_another_in_order() -> None:
    rng = np.random.default_rng(2)
    records = [_record(i, "completed", rng) for i in range(300)]
    whole, first, rest = Totals(), Totals(), Totals()
    TaskRows(whole, ["a", "b", "c"]).text(records)
    TaskRows(first, ["a", "b", "c"]).text(records[:100])
    rest.load(first.state(figures=False), first.waits.tobytes())
    TaskRows(rest, ["a", "b", "c"]).text(records[100:])
    assert rest.state() == whole.state() and rest.waits.tobytes() == whole.waits.tobytes()
    figures_only = Totals()
    figures_only.load(whole.state())
    assert figures_only.wait_figures() == whole.wait_figures() and not len(figures_only.waits)


def test_event_records_make_the_lines_a_line_log_writes_at_once() -> None:
    names = ['"n0"', '"n1"']
    log = EventRecords()
    out: list[str] = []
    lines = LineLog(type("Sink", (), {"write": staticmethod(out.append)})(), ["n0", "n1"])
    for sink in (log, lines):
        sink.record((ARRIVE, 1.5, 7, 0))
        sink.write('{"t":2.0,"ev":"tick"}\n')
        sink.record((START, 2.0, 7, 1))
        sink.record((FINISH, 1e-05, 7, 0))
    assert len(log) == 4
    text = event_lines(log.take(), names)
    assert text == "".join(out) == (
        '{"t":1.5,"ev":"arrive","task":7}\n{"t":2.0,"ev":"tick"}\n'
        '{"t":2.0,"act":"start","task":7,"node":"n1"}\n{"t":1e-05,"ev":"finish","task":7}\n')
    assert len(log) == 0 and event_lines(log.take(), names) == ""


def test_columns_travel_as_array_bytes_and_text_as_lists() -> None:
    from rpiaas.rundir.writerproc import _EVENT_KINDS, _TASK_KINDS, pack, unpack

    events = [(ARRIVE, 1.5, 7, 0), (0.0, 0.0, '{"t":2.0,"ev":"tick"}\n', 0), (START, 2.0, 2**70, 1)]
    packed = pack(events, _EVENT_KINDS)
    assert isinstance(packed[1], bytes) and isinstance(packed[2], list)  # a line and a huge id
    assert list(zip(*unpack(packed, _EVENT_KINDS), strict=True)) == events
    rows = [(1, 0.5, 1.0, 2.0, 3, "completed", 2, 100, 7.25, "cpu", "a,b", 1, {"placed": (3, 4), "peak_mem_mb": 2.5,
                                                                                 "pull_s": 0.75}),
            (2, 0.5, 1.0, 2.0, 3, "completed", 2, 100, 7.25, "cpu", "", 1, None)]
    assert list(zip(*unpack(pack(rows, _TASK_KINDS), _TASK_KINDS), strict=True)) == rows
    assert unpack(pack([], _TASK_KINDS), _TASK_KINDS) == [[] for _ in _TASK_KINDS]


def test_a_rows_last_columns_are_the_rare_fields_of_their_names() -> None:
    from rpiaas.model import RARE_DEFAULTS
    from rpiaas.rundir.format import TASK_COLUMNS
    from rpiaas.rundir.stream import RARE_COLUMNS

    assert TASK_COLUMNS[-len(RARE_COLUMNS) - 1:] == ("nodes", *RARE_COLUMNS)
    assert set(RARE_COLUMNS) <= set(RARE_DEFAULTS)
