"""The history store: what the master keeps of its nodes over time.

Samples polled from agents, online/offline transitions and other events
(boot reports), with downsampled queries and retention.  Two backends behind
one interface: SQLite (a file, the default) and MongoDB (``pip install
'rpiaas[mongo]'``).  ``docs/history-store.md`` describes both.

    >>> from rpiaas.store import Sample, open_store
    >>> with open_store(":memory:") as store:
    ...     store.add_sample(Sample(node="pi01", time_s=0.0, cpu_util=0.5, mem_used_mb=900.0,
    ...                             mem_total_mb=4096.0, load1=0.8, disk_used_ratio=0.3))
    ...     [s.cpu_util for s in store.history("pi01")]
    [0.5]
"""

from __future__ import annotations

from .base import HistoryStore, StoreClosedError
from .factory import open_store
from .mongodb import MongoStore
from .records import CompactResult, Event, NodeStatus, PowerReading, PurgeResult, Sample, StateChange
from .sqlite import SQLiteStore

__all__ = [
    "CompactResult",
    "Event",
    "HistoryStore",
    "MongoStore",
    "NodeStatus",
    "PowerReading",
    "PurgeResult",
    "SQLiteStore",
    "Sample",
    "StateChange",
    "StoreClosedError",
    "open_store",
]
