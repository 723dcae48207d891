"""Fixtures for the history store tests: one store factory per backend.

SQLite always runs, on a real file under ``tmp_path``.  MongoDB runs only
against a real server named by ``RPIAAS_TEST_MONGO_URI`` (each test gets a
fresh database, dropped afterwards); without it those tests are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas.store import HistoryStore, MongoStore, Sample, SQLiteStore

MONGO_ENV = "RPIAAS_TEST_MONGO_URI"
MONGO_SKIP = f"{MONGO_ENV} not set: no MongoDB server can be installed here"

StoreFactory = Callable[..., HistoryStore]


def sample(node: str = "pi01", time_s: float = 0.0, **fields: Any) -> Sample:
    """A sample with plausible values for the fields not given."""
    values: dict[str, Any] = {"cpu_util": 0.25, "mem_used_mb": 512.0, "mem_total_mb": 4096.0,
                              "load1": 0.5, "disk_used_ratio": 0.4}
    values.update(fields)
    return Sample(node=node, time_s=time_s, **values)


@pytest.fixture(params=["sqlite", "mongodb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one fresh database of the backend; a second call reopens the same data."""
    opened: list[HistoryStore] = []
    cleanup: list[Callable[[], None]] = []
    if request.param == "sqlite":
        path = tmp_path / "history.db"

        def open_it(**options: Any) -> HistoryStore:
            return SQLiteStore(path, **options)
    else:
        uri = os.environ.get(MONGO_ENV)
        if not uri:
            pytest.skip(MONGO_SKIP)
        database = f"rpiaas_test_{uuid.uuid4().hex[:12]}"

        def open_it(**options: Any) -> HistoryStore:
            options.setdefault("client_options", {"serverSelectionTimeoutMS": 10_000})
            return MongoStore(uri, database=database, **options)

        def drop() -> None:
            import pymongo

            client: pymongo.MongoClient[dict[str, object]]
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
                client.drop_database(database)

        cleanup.append(drop)

    def factory(**options: Any) -> HistoryStore:
        store = open_it(**options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    for undo in cleanup:
        undo()


@pytest.fixture
def store(make_store: StoreFactory) -> HistoryStore:
    """A fresh store of each backend with default options."""
    return make_store()
