"""``open_store``: a history store from a path or a URL."""

from __future__ import annotations

import os
import re
from typing import Any

from .base import HistoryStore

__all__ = ["open_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(target: str | os.PathLike[str], **options: Any) -> HistoryStore:
    """Open the history store that ``target`` names.

    - ``mongodb://...`` or ``mongodb+srv://...``: a :class:`~rpiaas.store.mongodb.MongoStore`
      (needs ``pip install 'rpiaas[mongo]'``); the database is the URL's path,
      ``rpiaas`` if it has none;
    - ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` (as
      SQLAlchemy spells them) or a plain path: a
      :class:`~rpiaas.store.sqlite.SQLiteStore` on that file; ``":memory:"``
      for a throwaway one.

    ``options`` go to the backend's constructor (``batch_size``,
    ``flush_interval_s``, ...).  Any other scheme is a ValueError.
    """
    text = os.fspath(target)
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else None
    if scheme in ("mongodb", "mongodb+srv"):
        from .mongodb import MongoStore

        return MongoStore(text, **options)
    from .sqlite import SQLiteStore

    if scheme is None:
        return SQLiteStore(text, **options)
    if scheme == "sqlite":
        path = text[len("sqlite://"):]
        if not path.startswith("/") or len(path) == 1:
            raise ValueError(f"{text!r}: write sqlite:///relative.db or sqlite:////absolute.db")
        return SQLiteStore(path[1:], **options)
    raise ValueError(f"{text!r}: no history store for scheme {scheme!r}"
                     " (use a path, sqlite:///path or mongodb://host/database)")
