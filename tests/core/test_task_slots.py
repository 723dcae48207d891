"""Task keeps the fields most tasks leave at their default in one slot: same names, same order."""

from __future__ import annotations

import pickle

from rpiaas.model import Task, TaskState

RARE = ("command", "env", "priority", "after", "parts", "procs", "placed", "reason", "cpu_s", "peak_mem_mb")


def test_a_plain_task_makes_no_dict_and_reads_defaults() -> None:
    t = Task(1, 0.0, 2, 512, 10.0, tenant="u1", walltime_s=30.0, nodes=1, parts=(), procs=0)
    assert t.rare is None
    assert (t.command, t.env, t.priority, t.after, t.parts, t.procs, t.placed, t.reason, t.cpu_s,
            t.peak_mem_mb) == (None, (), 0, (), (), 0, (), "", None, None)
    assert not hasattr(t, "__dict__")
    assert len(Task.__slots__) == 17


def test_positional_order_is_kept() -> None:
    t = Task(7, 1.5, 2, 256, 9.0, "sleep", ("echo", "hi"), (("A", "1"),), "ten", 3, (1, 2), 60.0)
    assert (t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.kind, t.command, t.env, t.tenant,
            t.priority, t.after, t.walltime_s) == (7, 1.5, 2, 256, 9.0, "sleep", ("echo", "hi"),
                                                   (("A", "1"),), "ten", 3, (1, 2), 60.0)
    assert t.state is TaskState.QUEUED and t.node == -1 and t.nodes == 1


def test_rare_fields_set_and_read_back_each_on_its_own() -> None:
    values = {"command": ("true",), "env": (("K", "v"),), "priority": 5, "after": (3,), "parts": (2, 1),
              "procs": 3, "placed": (4, 9), "reason": "exit status 1", "cpu_s": 1.25, "peak_mem_mb": 12.0}
    for name in RARE:
        t = Task(1, 0.0, 1, 1, 1.0)
        setattr(t, name, values[name])
        assert getattr(t, name) == values[name]
        assert t.rare == {name: values[name]}
        for other in RARE:
            if other != name:
                assert getattr(Task(1, 0.0, 1, 1, 1.0), other) == getattr(t, other)
    t = Task(1, 0.0, 1, 1, 1.0, nodes=2, parts=(2, 1), placed=(0, 1), reason="walltime")
    t.placed = ()
    assert t.placed == () and t.parts == (2, 1) and t.reason == "walltime"


def test_a_task_survives_pickling() -> None:
    t = Task(1, 0.0, 1, 1, 1.0, nodes=2, placed=(3, 4), cpu_s=0.5)
    u = pickle.loads(pickle.dumps(t))
    assert (u.nodes, u.placed, u.cpu_s, u.parts) == (2, (3, 4), 0.5, ())
