"""The SQLite history store: one file, the embedded default.

The file is in WAL mode, so other processes (a CLI, a notebook) can read it
while the master writes.  Samples are written in batches with one
``executemany`` per transaction.  Node names are kept once in ``nodes`` and
referred to by id; every table has an index on ``(node_id, time_s)``.  The
schema is in ``docs/history-store.md``; ``PRAGMA user_version`` holds its
version and ``PRAGMA application_id`` marks the file as ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import DEFAULT_MAX_PENDING, HistoryStore
from .buckets import MEAN_FIELDS, bucket_sample, core_means, cutoff_bucket
from .records import CompactResult, Event, NodeStatus, PowerReading, PurgeResult, Sample, StateChange

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 2  # 2: samples.cpu_busy_s, the power table
APPLICATION_ID = 0x52506948  # b"RPiH"

_SCHEMA = """
CREATE TABLE nodes (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE samples (
    node_id         INTEGER NOT NULL REFERENCES nodes (id),
    time_s          REAL NOT NULL,
    cpu_util        REAL NOT NULL,
    mem_used_mb     REAL NOT NULL,
    mem_total_mb    REAL NOT NULL,
    load1           REAL NOT NULL,
    disk_used_ratio REAL NOT NULL,
    temperature_c   REAL,
    cpu_per_core    TEXT,
    online          INTEGER NOT NULL,
    n               INTEGER NOT NULL DEFAULT 1,
    resolution_s    REAL NOT NULL DEFAULT 0,
    cpu_busy_s      REAL
);
CREATE INDEX samples_node_time ON samples (node_id, time_s);
CREATE TABLE states (
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    time_s  REAL NOT NULL,
    online  INTEGER NOT NULL,
    reason  TEXT NOT NULL
);
CREATE INDEX states_node_time ON states (node_id, time_s);
CREATE TABLE events (
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    time_s  REAL NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX events_node_time ON events (node_id, time_s);
""" + """
CREATE TABLE power (
    node_id INTEGER NOT NULL REFERENCES nodes (id),
    time_s  REAL NOT NULL,
    watts   REAL NOT NULL,
    source  TEXT NOT NULL
);
CREATE INDEX power_node_time ON power (node_id, time_s);
"""
# from schema 1: what version 2 added
_MIGRATE_1_2 = "ALTER TABLE samples ADD COLUMN cpu_busy_s REAL;" + _SCHEMA[_SCHEMA.index("CREATE TABLE power"):]

_COLUMNS = ("time_s, cpu_util, mem_used_mb, mem_total_mb, load1, disk_used_ratio, "
            "temperature_c, cpu_per_core, online, n, resolution_s, cpu_busy_s")
_INSERT = "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_BUCKET = "CAST(time_s / :r AS INTEGER)"
# One bucket row per group, in buckets.BUCKET_COLUMNS order.
_AGGREGATE = ", ".join(
    [f"{_BUCKET} AS k", "SUM(n)", "COUNT(*)", "MAX(online)", "MIN(resolution_s)",
     "MAX(resolution_s)"]
    + [f"SUM({f} * n), SUM(CASE WHEN {f} IS NULL THEN 0 ELSE n END), MIN({f}), MAX({f})"
       for f in MEAN_FIELDS])
# json_each's columns (key, value, ...) do not clash with ours: {where} needs no prefixes
_CORES = (f"SELECT {_BUCKET} AS k, CAST(j.key AS INTEGER) AS i, SUM(j.value * n), SUM(n),"
          " MIN(j.value), MAX(j.value) FROM samples, json_each(samples.cpu_per_core) AS j"
          " WHERE {where} GROUP BY k, i")
_IN_BUCKETS = f"{_BUCKET} IN (SELECT value FROM json_each(:ks))"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _row(nid: int, s: Sample) -> tuple[Any, ...]:
    return (nid, s.time_s, s.cpu_util, s.mem_used_mb, s.mem_total_mb, s.load1, s.disk_used_ratio,
            s.temperature_c, None if s.cpu_per_core is None else _dumps(s.cpu_per_core),
            int(s.online), s.count, s.resolution_s, s.cpu_busy_s)


def _sample(node: str, row: Sequence[Any]) -> Sample:
    cores = row[7]
    return Sample(node=node, time_s=row[0], cpu_util=row[1], mem_used_mb=row[2],
                  mem_total_mb=row[3], load1=row[4], disk_used_ratio=row[5], temperature_c=row[6],
                  cpu_per_core=None if cores is None else tuple(json.loads(cores)),
                  online=bool(row[8]), count=row[9], resolution_s=row[10], cpu_busy_s=row[11])


class SQLiteStore(HistoryStore):
    """A history store in one SQLite file (``":memory:"`` for a throwaway one).

    :param path: the database file; its directory is created if missing.
    :param synchronous: ``PRAGMA synchronous``.  ``"NORMAL"`` (the default) in
        WAL mode keeps every committed flush through a crash or kill of the
        process; ``"FULL"`` also through a power cut, at the cost of an fsync
        per flush.
    :param busy_timeout_s: how long to wait for another process's write lock.
    :param batch_size, flush_interval_s, clock, max_pending: see :class:`HistoryStore`.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL",
                 busy_timeout_s: float = 5.0, batch_size: int = 1000,
                 flush_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        super().__init__(batch_size=batch_size, flush_interval_s=flush_interval_s, clock=clock,
                         max_pending=max_pending)
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = os.fspath(path)
        if self.path != ":memory:" and not self.path.startswith("file:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by threads: every use holds HistoryStore._lock.
        # isolation_level=None: transactions are the explicit BEGIN/COMMIT below.
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        self._ids: dict[str, int] = {}
        try:
            self.journal_mode = str(self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._init_schema()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise ValueError(f"{self.path}: cannot open as a history store: {err}") from err
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _init_schema(self) -> None:
        with self._transaction():
            app = self._db.execute("PRAGMA application_id").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if app == 0 and version == 0 and not self._db.execute(
                    "SELECT count(*) FROM sqlite_master").fetchone()[0]:
                # statement by statement: executescript() would COMMIT first
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif app != APPLICATION_ID:
                raise ValueError(f"{self.path} is an SQLite database but not an rpiaas"
                                 " history store")
            elif version == 1:  # an older master's file: add what version 2 has
                for statement in _MIGRATE_1_2.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                raise ValueError(f"{self.path} has history schema {version}; this rpiaas reads"
                                 f" up to {SCHEMA_VERSION}: upgrade rpiaas")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._ids.clear()  # ids inserted by the rolled-back transaction are gone
            raise

    def _node_id(self, node: str) -> int | None:
        """The id of ``node``, or None if the file has never seen it."""
        nid = self._ids.get(node)
        if nid is None:
            row = self._db.execute("SELECT id FROM nodes WHERE name = ?", (node,)).fetchone()
            if row is None:
                return None
            nid = self._ids[node] = int(row[0])
        return nid

    def _add_node(self, node: str) -> int:
        """The id of ``node``, added if new (inside a write transaction)."""
        nid = self._node_id(node)
        if nid is None:
            cur = self._db.execute("INSERT INTO nodes (name) VALUES (?)", (node,))
            assert cur.lastrowid is not None
            nid = self._ids[node] = cur.lastrowid
        return nid

    def _node_ids(self, node: str | None) -> list[tuple[str, int]]:
        if node is None:
            return [(str(n), int(i)) for i, n in self._db.execute("SELECT id, name FROM nodes")]
        nid = self._node_id(node)
        return [] if nid is None else [(node, nid)]

    # ------------------------------------------------------------------ writing
    def _write_samples(self, samples: list[Sample]) -> None:
        with self._transaction():
            ids = {node: self._add_node(node) for node in dict.fromkeys(s.node for s in samples)}
            self._db.executemany(_INSERT, [_row(ids[s.node], s) for s in samples])

    def _write_state(self, change: StateChange) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO states VALUES (?, ?, ?, ?)",
                             (self._add_node(change.node), change.time_s,
                              int(change.online), change.reason))

    def _write_power(self, readings: list[PowerReading]) -> None:
        with self._transaction():
            ids = {node: self._add_node(node) for node in dict.fromkeys(r.node for r in readings)}
            self._db.executemany("INSERT INTO power VALUES (?, ?, ?, ?)",
                                 [(ids[r.node], r.time_s, float(r.watts), r.source) for r in readings])

    def _power(self, node: str, start_s: float, end_s: float) -> list[PowerReading]:
        nid = self._node_id(node)
        if nid is None:
            return []
        rows = self._db.execute(
            "SELECT time_s, watts, source FROM power WHERE node_id = ? AND time_s >= ?"
            " AND time_s < ? ORDER BY time_s, rowid", (nid, start_s, end_s))
        return [PowerReading(node, t, w, src) for t, w, src in rows]

    def _write_event(self, event: Event) -> None:
        data = _dumps(event.data)
        with self._transaction():
            self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?)",
                             (self._add_node(event.node), event.time_s, event.kind, data))

    # ------------------------------------------------------------------ queries
    def _nodes(self) -> list[str]:
        return [str(r[0]) for r in self._db.execute("SELECT name FROM nodes")]

    def _latest(self, node: str | None) -> dict[str, NodeStatus]:
        out: dict[str, NodeStatus] = {}
        for name, nid in self._node_ids(node):
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM samples WHERE node_id = ?"
                " ORDER BY time_s DESC, rowid DESC LIMIT 1", (nid,)).fetchone()
            state = self._db.execute(
                "SELECT time_s, online, reason FROM states WHERE node_id = ?"
                " ORDER BY time_s DESC, rowid DESC LIMIT 1", (nid,)).fetchone()
            if row is None and state is None:
                continue
            out[name] = NodeStatus(
                name, None if row is None else _sample(name, row),
                None if state is None else StateChange(name, state[0], bool(state[1]), state[2]))
        return out

    def _history(self, node: str, start_s: float, end_s: float) -> list[Sample]:
        nid = self._node_id(node)
        if nid is None:
            return []
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM samples WHERE node_id = ? AND time_s >= ? AND time_s < ?"
            " ORDER BY time_s, rowid", (nid, start_s, end_s))
        return [_sample(node, row) for row in rows]

    def _buckets(self, node: str, start_s: float, end_s: float, resolution_s: float,
                 ) -> tuple[Sequence[Sequence[Any]], Iterable[Sequence[Any]]]:
        nid = self._node_id(node)
        if nid is None:
            return [], []
        args = {"id": nid, "a": start_s, "b": end_s, "r": resolution_s}
        where = "node_id = :id AND time_s >= :a AND time_s < :b"
        rows = self._db.execute(f"SELECT {_AGGREGATE} FROM samples WHERE {where}"
                                " GROUP BY k ORDER BY k", args).fetchall()
        cores = self._db.execute(_CORES.format(where=where), args).fetchall()
        return rows, cores

    def _states(self, node: str | None, start_s: float, end_s: float) -> list[StateChange]:
        sql = ("SELECT n.name, s.time_s, s.online, s.reason FROM states AS s"
               " JOIN nodes AS n ON n.id = s.node_id WHERE s.time_s >= ? AND s.time_s < ?")
        args: list[Any] = [start_s, end_s]
        if node is not None:
            nid = self._node_id(node)
            if nid is None:
                return []
            sql += " AND s.node_id = ?"
            args.append(nid)
        rows = self._db.execute(sql + " ORDER BY s.time_s, s.rowid", args)
        return [StateChange(name, t, bool(online), reason) for name, t, online, reason in rows]

    def _events(self, node: str | None, start_s: float, end_s: float,
                kind: str | None) -> list[Event]:
        sql = ("SELECT n.name, e.time_s, e.kind, e.data FROM events AS e"
               " JOIN nodes AS n ON n.id = e.node_id WHERE e.time_s >= ? AND e.time_s < ?")
        args: list[Any] = [start_s, end_s]
        if node is not None:
            nid = self._node_id(node)
            if nid is None:
                return []
            sql += " AND e.node_id = ?"
            args.append(nid)
        if kind is not None:
            sql += " AND e.kind = ?"
            args.append(kind)
        rows = self._db.execute(sql + " ORDER BY e.time_s, e.rowid", args)
        return [Event(name, t, k, json.loads(data)) for name, t, k, data in rows]

    # ---------------------------------------------------------------- retention
    def _compact(self, older_than_s: float, resolution_s: float) -> CompactResult:
        kc = cutoff_bucket(older_than_s, resolution_s)
        replaced = written = 0
        if kc <= 0:
            return CompactResult(0, 0)
        with self._transaction():
            for name, nid in self._node_ids(None):
                args: dict[str, Any] = {"id": nid, "older": older_than_s, "r": resolution_s,
                                        "kc": kc}
                where = f"node_id = :id AND time_s < :older AND {_BUCKET} < :kc"
                rows = self._db.execute(
                    f"SELECT {_AGGREGATE} FROM samples WHERE {where} GROUP BY k"
                    " HAVING COUNT(*) > 1 OR MIN(resolution_s) < :r ORDER BY k", args).fetchall()
                if not rows:
                    continue
                args["ks"] = _dumps([row[0] for row in rows])
                where += f" AND {_IN_BUCKETS}"
                cores = core_means(self._db.execute(_CORES.format(where=where), args))
                replaced += self._db.execute(f"DELETE FROM samples WHERE {where}", args).rowcount
                means = [bucket_sample(name, row, resolution_s, cores.get(int(row[0])))
                         for row in rows]
                self._db.executemany(_INSERT, [_row(nid, s) for s in means])
                written += len(means)
        return CompactResult(replaced, written)

    def _purge(self, older_than_s: float) -> PurgeResult:
        with self._transaction():
            # "node_id IN (...)" lets the (node_id, time_s) index serve the range
            samples = self._db.execute(
                "DELETE FROM samples WHERE node_id IN (SELECT id FROM nodes) AND time_s < ?",
                (older_than_s,)).rowcount
            keep = [row[0] for _, nid in self._node_ids(None) for row in self._db.execute(
                "SELECT rowid FROM states WHERE node_id = ? ORDER BY time_s DESC, rowid DESC"
                " LIMIT 1", (nid,))]
            states = self._db.execute(
                "DELETE FROM states WHERE node_id IN (SELECT id FROM nodes) AND time_s < ?"
                " AND rowid NOT IN (SELECT value FROM json_each(?))",
                (older_than_s, _dumps(keep))).rowcount
            events = self._db.execute(
                "DELETE FROM events WHERE node_id IN (SELECT id FROM nodes) AND time_s < ?",
                (older_than_s,)).rowcount
            power = self._db.execute(
                "DELETE FROM power WHERE node_id IN (SELECT id FROM nodes) AND time_s < ?",
                (older_than_s,)).rowcount
        return PurgeResult(samples, states, events, power)

    def _close(self) -> None:
        self._db.close()
