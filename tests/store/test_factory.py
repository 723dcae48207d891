"""open_store: which backend a path or URL opens."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from rpiaas.store import SQLiteStore, open_store
from rpiaas.store import mongodb as mongodb_backend

from .conftest import sample


def test_a_path_opens_sqlite(tmp_path: Path) -> None:
    for target in (tmp_path / "a.db", str(tmp_path / "b.db")):
        with open_store(target, batch_size=7) as store:
            assert isinstance(store, SQLiteStore) and store.batch_size == 7
            assert Path(store.path) == Path(target)


def test_sqlite_urls_are_spelt_as_in_sqlalchemy(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/history.db") as store:
        assert isinstance(store, SQLiteStore) and store.path == "rel/history.db"
        store.add_sample(sample())
    assert (tmp_path / "rel" / "history.db").exists()
    with open_store(f"sqlite:///{tmp_path}/abs.db") as store:
        assert isinstance(store, SQLiteStore) and store.path == f"{tmp_path}/abs.db"
    with open_store(":memory:") as store:
        assert isinstance(store, SQLiteStore)
    for bad in ("sqlite://history.db", "sqlite:///"):
        with pytest.raises(ValueError, match=re.escape("sqlite:///relative.db")):
            open_store(bad)


def test_mongodb_urls_open_mongo(monkeypatch: pytest.MonkeyPatch) -> None:
    # dispatch only: the backend itself is tested against a real server in test_contract
    opened: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def __init__(self, uri: str, **options: Any) -> None:
            opened.append((uri, options))

    monkeypatch.setattr(mongodb_backend, "MongoStore", Recorder)
    open_store("mongodb://master:27017/testbed", batch_size=5)
    open_store("mongodb+srv://cluster.example/testbed")
    assert opened == [("mongodb://master:27017/testbed", {"batch_size": 5}),
                      ("mongodb+srv://cluster.example/testbed", {})]


def test_mongodb_without_pymongo_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymongo", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'rpiaas\[mongo\]'"):
        open_store("mongodb://localhost/rpiaas")


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="no history store for scheme 'postgresql'"):
        open_store("postgresql://localhost/rpiaas")
