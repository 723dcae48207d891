"""What only the SQLite backend promises: the file, its durability and its indexes."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpiaas.store import SQLiteStore
from rpiaas.store import sqlite as sqlite_backend
from rpiaas.store.base import failure_reason
from rpiaas.store.buckets import bucket_sample

from .conftest import sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(path) as s:
        yield s


def rows(path: Path, table: str = "samples") -> int:
    """Rows of ``table`` as another process would see them."""
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_the_file_is_in_wal_mode_and_marked_as_ours(store: SQLiteStore, path: Path) -> None:
    assert store.journal_mode == "wal"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA application_id").fetchone()[0] == sqlite_backend.APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_backend.SCHEMA_VERSION


def test_every_table_has_an_index_on_node_and_time(store: SQLiteStore, path: Path) -> None:
    with sqlite3.connect(path) as db:
        for table in ("samples", "states", "events"):
            columns = [r[2] for r in db.execute(f"PRAGMA index_info({table}_node_time)")]
            assert columns == ["node_id", "time_s"], table


def test_queries_use_the_index(store: SQLiteStore) -> None:
    store.add_samples(sample(f"pi{i % 3}", float(i), cpu_per_core=(0.5,)) for i in range(300))
    store.record_state("pi1", 1.0, True)
    store.record_event("pi1", 1.0, "boot")
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.history("pi1", 10, 200)
    store.history("pi1", 10, 200, resolution_s=60)
    store.latest()
    store.states("pi1", 0, 10)
    store.events("pi1", 0, 10)
    store.compact(100.0, 60.0)
    store.purge(50.0)
    store._db.set_trace_callback(None)
    # the trace has the statements with their parameters filled in (Python >= 3.11)
    queries = [sql for sql in statements if "samples" in sql and "?" not in sql
               and sql.lstrip().upper().startswith(("SELECT", "DELETE"))]
    if not queries:
        pytest.skip("this Python's trace callback does not fill in parameters")
    scans = []
    for sql in queries:
        plan = " | ".join(r[3] for r in store._db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        if "SCAN samples" in plan:
            scans.append((sql, plan))
    assert len(queries) >= 10 and scans == []


def test_samples_are_written_in_batches(path: Path) -> None:
    with SQLiteStore(path, batch_size=100, flush_interval_s=3600.0) as store:
        store.add_samples(sample("pi01", float(t)) for t in range(99))
        assert rows(path) == 0  # still buffered
        store.add_sample(sample("pi01", 99.0))
        assert rows(path) == 100  # one transaction
        store.add_samples(sample("pi01", float(t)) for t in range(100, 150))
        assert rows(path) == 100
    assert rows(path) == 150  # close() flushed


def test_a_failed_write_keeps_the_samples_buffered(store: SQLiteStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store.add_samples([sample("pi01", 1.0), sample("pi02", 2.0)])
    with monkeypatch.context() as m:
        m.setattr(sqlite_backend, "_INSERT", "INSERT INTO no_such_table VALUES (?)")
        with pytest.raises(sqlite3.OperationalError):
            store.flush()
    assert store.pending == 2
    assert store.nodes() == ["pi01", "pi02"]  # the failed transaction's node ids were not kept
    assert len(store.history("pi01")) == len(store.history("pi02")) == 1


def test_compact_is_one_transaction(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add_samples(sample(f"pi{n}", float(t)) for n in range(3) for t in range(0, 600, 10))
    store.flush()
    before = {n: store.history(n) for n in store.nodes()}
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(args)
        if len(calls) > 7:  # after the first node's buckets are in
            raise RuntimeError("disk full")
        return bucket_sample(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_backend, "bucket_sample", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        store.compact(600.0, 60.0)
    assert {n: store.history(n) for n in store.nodes()} == before


def test_purge_is_one_transaction(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add_samples(sample("pi01", float(t)) for t in range(100))
    store.record_state("pi01", 1.0, True)
    store.record_state("pi01", 2.0, False)

    def failing(value: object) -> str:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(sqlite_backend, "_dumps", failing)  # used after samples are deleted
    with pytest.raises(RuntimeError, match="interrupted"):
        store.purge(50.0)
    assert len(store.history("pi01")) == 100 and len(store.states()) == 2


CHILD = textwrap.dedent("""
    import sys
    from rpiaas.store import Sample, SQLiteStore

    store = SQLiteStore(sys.argv[1], batch_size=250, flush_interval_s=3600.0)
    mode, t = sys.argv[2], 0

    def add(count):
        global t
        store.add_samples(Sample(node=f"pi{(t + i) % 5}", time_s=float(t + i), cpu_util=0.5,
                                 mem_used_mb=100.0, mem_total_mb=4096.0, load1=0.1,
                                 disk_used_ratio=0.2, cpu_per_core=(0.5, 0.5))
                          for i in range(count))
        t += count

    if mode == "once":
        add(1000)
        store.flush()
        add(100)  # buffered, never flushed
        print("flushed 1000", flush=True)
        sys.stdin.read()  # wait to be killed
    else:
        while True:  # written in batches of 100, flushed at >= 250 and every 1000
            add(100)
            if t % 1000 == 0:
                store.flush()
                print(t, flush=True)
""")


def _child(path: Path, mode: str) -> subprocess.Popen[str]:
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)


def _all_times(path: Path) -> list[float]:
    with SQLiteStore(path) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return sorted(s.time_s for node in store.nodes() for s in store.history(node))


def test_flushed_samples_survive_sigkill(path: Path) -> None:
    child = _child(path, "once")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "flushed 1000"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    # every flushed sample is there; the 100 buffered ones died with the process
    assert _all_times(path) == [float(t) for t in range(1000)]


def test_a_process_killed_while_writing_loses_no_flushed_batch(path: Path) -> None:
    child = _child(path, "loop")
    reported = 0
    try:
        assert child.stdout is not None
        for _ in range(20):
            reported = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    times = _all_times(path)
    assert len(times) >= reported == 20_000
    # whole transactions only: no gaps, and a whole number of 100-sample adds
    assert times == [float(t) for t in range(len(times))]
    assert len(times) % 100 == 0


def test_another_connection_reads_while_the_store_is_open(store: SQLiteStore, path: Path) -> None:
    store.add_samples(sample("pi01", float(t)) for t in range(10))
    store.flush()
    with SQLiteStore(path) as reader:
        assert len(reader.history("pi01")) == 10
        store.add_sample(sample("pi01", 10.0))
        store.flush()
        assert len(reader.history("pi01")) == 11


def test_the_directory_is_created(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a" / "b" / "history.db") as store:
        store.add_sample(sample())
    assert (tmp_path / "a" / "b" / "history.db").exists()


def test_a_memory_store_works(tmp_path: Path) -> None:
    with SQLiteStore(":memory:") as store:
        store.add_sample(sample())
        assert len(store.history("pi01")) == 1


def test_other_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="not an rpiaas history store"):
        SQLiteStore(other)
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to have a header" * 20)
    with pytest.raises(ValueError, match="cannot open as a history store"):
        SQLiteStore(text)


def test_a_newer_schema_is_refused(path: Path) -> None:
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={sqlite_backend.SCHEMA_VERSION + 1}")
    with pytest.raises(ValueError, match="upgrade rpiaas"):
        SQLiteStore(path)


def test_bad_options_are_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(path, synchronous="sometimes")
    with pytest.raises(ValueError, match="batch_size"):
        SQLiteStore(path, batch_size=0)
    with pytest.raises(ValueError, match="flush_interval_s"):
        SQLiteStore(path, flush_interval_s=-1.0)


def test_a_schema_1_file_is_brought_to_schema_2(path: Path) -> None:
    """A history written by an older master: its samples kept, a CPU counter column and the
    power table added."""
    from rpiaas.store import PowerReading

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        db.execute("CREATE TABLE samples (node_id INTEGER NOT NULL, time_s REAL NOT NULL,"
                   " cpu_util REAL NOT NULL, mem_used_mb REAL NOT NULL, mem_total_mb REAL NOT NULL,"
                   " load1 REAL NOT NULL, disk_used_ratio REAL NOT NULL, temperature_c REAL,"
                   " cpu_per_core TEXT, online INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 1,"
                   " resolution_s REAL NOT NULL DEFAULT 0)")
        for table, cols in (("states", "online INTEGER NOT NULL, reason TEXT NOT NULL"),
                            ("events", "kind TEXT NOT NULL, data TEXT NOT NULL")):
            db.execute(f"CREATE TABLE {table} (node_id INTEGER NOT NULL, time_s REAL NOT NULL, {cols})")
        db.execute("INSERT INTO nodes VALUES (1, 'pi01')")
        db.execute("INSERT INTO samples VALUES (1, 5.0, 0.5, 1.0, 2.0, 0.1, 0.2, NULL, NULL, 1, 1, 0)")
        db.execute(f"PRAGMA application_id={sqlite_backend.APPLICATION_ID}")
        db.execute("PRAGMA user_version=1")
    with SQLiteStore(path) as store:
        assert [(s.time_s, s.cpu_busy_s) for s in store.history("pi01")] == [(5.0, None)]
        store.add_power([PowerReading("pi01", 6.0, 3.5, "pmic")])
        assert [r.watts for r in store.power("pi01")] == [3.5]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_locked_file_fails_writes_not_reads_and_the_samples_wait(path: Path) -> None:
    """Another process holds BEGIN EXCLUSIVE: writes fail (counted, with the reason in the status),
    reads answer from what was written, and the buffered samples are written once it lets go."""
    with SQLiteStore(path, busy_timeout_s=0.1, batch_size=1) as store:
        store.add_sample(sample(time_s=0.0))
        assert store.status == "ok"
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.add_sample(sample(time_s=1.0))
        assert store.status == "failing: OperationalError: database is locked"
        assert store.failed_writes == 1 and store.pending == 1
        assert [s.time_s for s in store.history("pi01")] == [0.0]  # a read, not an error
        other.execute("ROLLBACK")
        other.close()
        assert store.flush() == 1
        assert store.status == "ok" and store.failed_writes == 2  # the read tried once more
        assert [s.time_s for s in store.history("pi01")] == [0.0, 1.0]


def test_the_buffer_of_a_failing_store_is_bounded_dropping_the_oldest(path: Path) -> None:
    with SQLiteStore(path, busy_timeout_s=0.05, batch_size=2, max_pending=3) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        for t in range(5):
            with contextlib.suppress(sqlite3.OperationalError):
                store.add_sample(sample(time_s=float(t)))
        assert store.pending == 3 and store.dropped == 2
        other.execute("ROLLBACK")
        other.close()
        store.flush()
        assert [s.time_s for s in store.history("pi01")] == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="max_pending must be an integer >= batch_size"):
        SQLiteStore(path, batch_size=10, max_pending=5)


def test_a_failure_reason_is_one_line_without_credentials() -> None:
    err = RuntimeError("mongodb://admin:s3cret@db.lab:27017/rpiaas:\n  connection refused")
    assert failure_reason(err) == "RuntimeError: mongodb://db.lab:27017/rpiaas: connection refused"
    assert failure_reason(TimeoutError()) == "TimeoutError"
