"""The MongoDB history store, through pymongo (imported only when a store is opened).

Like the original RPiaaS monitor, the master can keep its history in MongoDB:
``rpiaas master --mongo mongodb://host/rpiaas``.  Collections ``samples``,
``states``, ``events`` and ``power`` hold one document per row (the fields of the record,
plus ``t``, the time as a BSON date, for TTL indexes and charting tools), each
with an index on ``(node, time_s)``; ``nodes`` holds one document per node name.
With ``timeseries=True`` (MongoDB >= 7.0) ``samples`` is created as a
time-series collection (``timeField: t``, ``metaField: node``).

Downsampling runs as an aggregation pipeline (``$group`` on
``$floor(time_s / resolution_s)``), returning the same bucket rows as SQLite's
``GROUP BY``, finished by the same code (:mod:`rpiaas.store.buckets`).
:meth:`compact` and :meth:`purge` run in one multi-document transaction when
the server allows it (a replica set or sharded cluster, not a time-series
collection); on a standalone server they run step by step (see
``docs/history-store.md``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .base import DEFAULT_MAX_PENDING, HistoryStore, PartialWrite
from .buckets import BUCKET_COLUMNS, MEAN_FIELDS, bucket_sample, core_means, cutoff_bucket
from .records import CompactResult, Event, NodeStatus, PowerReading, PurgeResult, Sample, StateChange

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.client_session import ClientSession
    from pymongo.collection import Collection
    from pymongo.database import Database

__all__ = ["MIN_TIMESERIES_VERSION", "MongoStore"]

Doc = dict[str, Any]
_T = TypeVar("_T")

#: Time-series collections allow deletes by time (compact, purge) from 7.0 on.
MIN_TIMESERIES_VERSION = (7, 0)
_NO_ID = {"_id": 0, "t": 0}
_NEWEST = [("time_s", -1), ("_id", -1)]
_OLDEST = [("time_s", 1), ("_id", 1)]
_TRANSACTIONAL = ("ReplicaSetWithPrimary", "Sharded", "LoadBalanced")


def _utc(time_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(time_s, tz=dt.timezone.utc)


def _doc(s: Sample) -> Doc:
    return {"node": s.node, "time_s": float(s.time_s), "t": _utc(s.time_s),
            "cpu_util": s.cpu_util, "mem_used_mb": s.mem_used_mb, "mem_total_mb": s.mem_total_mb,
            "load1": s.load1, "disk_used_ratio": s.disk_used_ratio,
            "temperature_c": s.temperature_c,
            "cpu_per_core": None if s.cpu_per_core is None else list(s.cpu_per_core),
            "online": bool(s.online), "n": s.count, "resolution_s": s.resolution_s,
            "cpu_busy_s": s.cpu_busy_s}


def _sample(d: Doc) -> Sample:
    cores = d.get("cpu_per_core")
    return Sample(node=d["node"], time_s=d["time_s"], cpu_util=d["cpu_util"],
                  mem_used_mb=d["mem_used_mb"], mem_total_mb=d["mem_total_mb"], load1=d["load1"],
                  disk_used_ratio=d["disk_used_ratio"], temperature_c=d.get("temperature_c"),
                  cpu_per_core=None if cores is None else tuple(cores), online=bool(d["online"]),
                  count=int(d.get("n", 1)), resolution_s=float(d.get("resolution_s", 0.0)),
                  cpu_busy_s=d.get("cpu_busy_s"))


def _range(start_s: float, end_s: float) -> Doc:
    return {"$gte": start_s, "$lt": end_s}


def _bucket(resolution_s: float) -> Doc:
    return {"$floor": {"$divide": ["$time_s", resolution_s]}}


def _group(resolution_s: float) -> Doc:
    """A ``$group`` stage giving the bucket rows of buckets.BUCKET_COLUMNS (``k`` is ``_id``)."""
    group: Doc = {"_id": _bucket(resolution_s), "count": {"$sum": "$n"}, "rows": {"$sum": 1},
                  "online": {"$max": "$online"}, "res_min": {"$min": "$resolution_s"},
                  "res_max": {"$max": "$resolution_s"}}
    for f in MEAN_FIELDS:
        # $multiply of a null is null and $sum skips it; $min/$max skip nulls
        group[f"{f}_sum"] = {"$sum": {"$multiply": [f"${f}", "$n"]}}
        group[f"{f}_n"] = {"$sum": {"$cond": [{"$eq": [{"$ifNull": [f"${f}", None]}, None]},
                                              0, "$n"]}}
        group[f"{f}_lo"] = {"$min": f"${f}"}
        group[f"{f}_hi"] = {"$max": f"${f}"}
    return {"$group": group}


def _core_pipeline(match: Doc, resolution_s: float) -> list[Doc]:
    return [{"$match": {**match, "cpu_per_core": {"$type": "array"}}},
            {"$unwind": {"path": "$cpu_per_core", "includeArrayIndex": "core"}},
            {"$group": {"_id": {"k": _bucket(resolution_s), "i": "$core"},
                        "s": {"$sum": {"$multiply": ["$cpu_per_core", "$n"]}},
                        "n": {"$sum": "$n"}, "lo": {"$min": "$cpu_per_core"},
                        "hi": {"$max": "$cpu_per_core"}}}]


def _bucket_row(d: Doc) -> tuple[Any, ...]:
    return (d["_id"], *(d[c] for c in BUCKET_COLUMNS[1:]))


def _core_rows(docs: Iterable[Doc]) -> list[tuple[Any, ...]]:
    return [(d["_id"]["k"], d["_id"]["i"], d["s"], d["n"], d["lo"], d["hi"]) for d in docs]


class MongoStore(HistoryStore):
    """A history store in a MongoDB database.

    :param uri: ``mongodb://[user:pass@]host[:port]/[database][?options]`` (or
        ``mongodb+srv://``); pymongo's options apply, e.g.
        ``serverSelectionTimeoutMS=5000`` to fail fast when the server is down.
    :param database: the database; default the URI's, else ``rpiaas``.
    :param timeseries: create ``samples`` as a time-series collection if it does
        not exist yet (needs MongoDB >= 7.0); an existing collection is used as it is.
    :param client_options: more keyword arguments for ``pymongo.MongoClient``.
    :param batch_size, flush_interval_s, clock, max_pending: see :class:`HistoryStore`.
    """

    def __init__(self, uri: str, *, database: str | None = None, timeseries: bool = False,
                 client_options: dict[str, Any] | None = None, batch_size: int = 1000,
                 flush_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        super().__init__(batch_size=batch_size, flush_interval_s=flush_interval_s, clock=clock,
                         max_pending=max_pending)
        try:
            import pymongo
        except ImportError as err:
            raise ImportError("the MongoDB history store needs pymongo:"
                              " pip install 'rpiaas[mongo]'") from err
        self.uri = uri
        self._known: set[str] = set()  # node names already in the nodes collection
        self._client: MongoClient[Doc] = pymongo.MongoClient(uri, **(client_options or {}))
        try:
            db = (self._client[database] if database
                  else self._client.get_default_database("rpiaas"))
            self.database = db.name
            self._client.admin.command("ping")  # fail here, not at the first write
            self.server_version = tuple(int(v) for v in
                                        self._client.server_info()["versionArray"][:2])
            self.transactions = (self._client.topology_description.topology_type_name
                                 in _TRANSACTIONAL)
            self._coll_samples: Collection[Doc] = db["samples"]
            self._coll_states: Collection[Doc] = db["states"]
            self._coll_events: Collection[Doc] = db["events"]
            self._coll_nodes: Collection[Doc] = db["nodes"]
            self._coll_power: Collection[Doc] = db["power"]
            self.timeseries = self._create(db, timeseries)
        except BaseException:
            self._client.close()
            raise

    def __repr__(self) -> str:
        return f"MongoStore(database={self.database!r})"

    def _create(self, db: Database[Doc], timeseries: bool) -> bool:
        from pymongo.errors import CollectionInvalid

        if timeseries and "samples" not in db.list_collection_names():
            if self.server_version < MIN_TIMESERIES_VERSION:
                raise ValueError(
                    "a time-series history needs MongoDB >= 7.0 (deleting by time);"
                    f" this server is {'.'.join(map(str, self.server_version))}:"
                    " open it with timeseries=False")
            with contextlib.suppress(CollectionInvalid):  # another process created it first
                db.create_collection("samples", timeseries={
                    "timeField": "t", "metaField": "node", "granularity": "seconds"})
        is_ts = "timeseries" in self._coll_samples.options()
        # the _id tie-break is part of the sort of every history, so the index serves it
        keys = [("node", 1), ("time_s", 1)] + ([] if is_ts else [("_id", 1)])
        self._coll_samples.create_index(keys, name="node_time")
        for coll in (self._coll_states, self._coll_events, self._coll_power):
            coll.create_index([("node", 1), ("time_s", 1)], name="node_time")
        return is_ts

    def _atomically(self, work: Callable[[ClientSession | None], _T]) -> _T:
        # multi-document transactions need a replica set or mongos, and
        # exclude deletes on time-series collections
        if self.transactions and not self.timeseries:
            with self._client.start_session() as session:
                result: _T = session.with_transaction(work)
                return result
        return work(None)

    # ------------------------------------------------------------------ writing
    def _add_nodes(self, names: Iterable[str]) -> None:
        for name in dict.fromkeys(names):
            if name not in self._known:  # once per node and process: no bulk write needed
                self._coll_nodes.update_one({"_id": name}, {"$setOnInsert": {"name": name}},
                                            upsert=True)
                self._known.add(name)

    def _write_samples(self, samples: list[Sample]) -> None:
        from pymongo.errors import BulkWriteError

        self._add_nodes(s.node for s in samples)
        try:
            self._coll_samples.insert_many([_doc(s) for s in samples], ordered=True)
        except BulkWriteError as err:  # ordered: the first nInserted are stored
            raise PartialWrite(int(err.details.get("nInserted", 0))) from err

    def _write_state(self, change: StateChange) -> None:
        self._add_nodes((change.node,))
        self._coll_states.insert_one({"node": change.node, "time_s": change.time_s,
                                 "t": _utc(change.time_s), "online": change.online,
                                 "reason": change.reason})

    def _write_power(self, readings: list[PowerReading]) -> None:
        self._add_nodes(r.node for r in readings)
        self._coll_power.insert_many([{"node": r.node, "time_s": r.time_s, "t": _utc(r.time_s),
                                       "watts": float(r.watts), "source": r.source}
                                      for r in readings], ordered=True)

    def _power(self, node: str, start_s: float, end_s: float) -> list[PowerReading]:
        cursor = self._coll_power.find({"node": node, "time_s": _range(start_s, end_s)}, _NO_ID,
                                       sort=_OLDEST)
        return [PowerReading(node, d["time_s"], d["watts"], d["source"]) for d in cursor]

    def _write_event(self, event: Event) -> None:
        self._add_nodes((event.node,))
        self._coll_events.insert_one({"node": event.node, "time_s": event.time_s,
                                 "t": _utc(event.time_s), "kind": event.kind,
                                 "data": event.data})

    # ------------------------------------------------------------------ queries
    def _nodes(self) -> list[str]:
        return [str(d["_id"]) for d in self._coll_nodes.find({}, {"_id": 1})]

    def _latest(self, node: str | None) -> dict[str, NodeStatus]:
        out: dict[str, NodeStatus] = {}
        for name in self._nodes() if node is None else [node]:
            d = self._coll_samples.find_one({"node": name}, _NO_ID, sort=_NEWEST)
            st = self._coll_states.find_one({"node": name}, sort=_NEWEST)
            if d is None and st is None:
                continue
            out[name] = NodeStatus(
                name, None if d is None else _sample(d),
                None if st is None else StateChange(name, st["time_s"], bool(st["online"]),
                                                    st["reason"]))
        return out

    def _history(self, node: str, start_s: float, end_s: float) -> list[Sample]:
        cursor = self._coll_samples.find({"node": node, "time_s": _range(start_s, end_s)}, _NO_ID,
                                    sort=_OLDEST)
        return [_sample(d) for d in cursor]

    def _buckets(self, node: str, start_s: float, end_s: float, resolution_s: float,
                 ) -> tuple[Sequence[Sequence[Any]], Iterable[Sequence[Any]]]:
        match = {"node": node, "time_s": _range(start_s, end_s)}
        rows = [_bucket_row(d) for d in self._coll_samples.aggregate(
            [{"$match": match}, _group(resolution_s), {"$sort": {"_id": 1}}])]
        cores = _core_rows(self._coll_samples.aggregate(_core_pipeline(match, resolution_s)))
        return rows, cores

    def _states(self, node: str | None, start_s: float, end_s: float) -> list[StateChange]:
        query: Doc = {"time_s": _range(start_s, end_s)}
        if node is not None:
            query["node"] = node
        return [StateChange(d["node"], d["time_s"], bool(d["online"]), d["reason"])
                for d in self._coll_states.find(query, sort=_OLDEST)]

    def _events(self, node: str | None, start_s: float, end_s: float,
                kind: str | None) -> list[Event]:
        query: Doc = {"time_s": _range(start_s, end_s)}
        if node is not None:
            query["node"] = node
        if kind is not None:
            query["kind"] = kind
        return [Event(d["node"], d["time_s"], d["kind"], d["data"])
                for d in self._coll_events.find(query, sort=_OLDEST)]

    # ---------------------------------------------------------------- retention
    def _compact(self, older_than_s: float, resolution_s: float) -> CompactResult:
        kc = cutoff_bucket(older_than_s, resolution_s)
        if kc <= 0:
            return CompactResult(0, 0)
        r = resolution_s
        nodes = self._nodes()

        def work(session: ClientSession | None) -> CompactResult:
            replaced = written = 0
            for name in nodes:
                match: Doc = {"node": name, "time_s": {"$lt": older_than_s}}
                rows = [_bucket_row(d) for d in self._coll_samples.aggregate([
                    {"$match": match}, _group(r),
                    {"$match": {"_id": {"$lt": kc},
                                "$or": [{"rows": {"$gt": 1}}, {"res_min": {"$lt": r}}]}},
                    {"$sort": {"_id": 1}}], session=session)]
                if not rows:
                    continue
                chosen = {**match, "$expr": {"$in": [_bucket(r), [row[0] for row in rows]]}}
                cores = core_means(_core_rows(self._coll_samples.aggregate(
                    _core_pipeline(chosen, r), session=session)))
                means = [bucket_sample(name, row, r, cores.get(int(row[0]))) for row in rows]
                # means first: without a transaction, an interruption leaves
                # duplicates (same means; merged by the next compact), not a gap
                new = self._coll_samples.insert_many([_doc(s) for s in means],
                                                     session=session).inserted_ids
                replaced += self._coll_samples.delete_many(
                    {**chosen, "_id": {"$nin": new}}, session=session).deleted_count
                written += len(means)
            return CompactResult(replaced, written)

        return self._atomically(work)

    def _purge(self, older_than_s: float) -> PurgeResult:
        nodes = self._nodes()
        old: Doc = {"node": {"$in": nodes}, "time_s": {"$lt": older_than_s}}

        def work(session: ClientSession | None) -> PurgeResult:
            samples = self._coll_samples.delete_many(old, session=session).deleted_count
            keep = [d["_id"] for name in nodes
                    if (d := self._coll_states.find_one({"node": name}, {"_id": 1}, sort=_NEWEST,
                                                   session=session)) is not None]
            states = self._coll_states.delete_many({**old, "_id": {"$nin": keep}},
                                              session=session).deleted_count
            events = self._coll_events.delete_many(old, session=session).deleted_count
            power = self._coll_power.delete_many(old, session=session).deleted_count
            return PurgeResult(samples, states, events, power)

        return self._atomically(work)

    def _close(self) -> None:
        self._client.close()
