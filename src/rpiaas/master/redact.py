"""Credentials never reach a log: a filter on the log handlers that redacts them.

The master's own messages name no credential; this filter is the second
line, for what others log: aiohttp's server logs a request it cannot parse
with the offending header line (``Authorization: Bearer <token>`` among
them).  :class:`Redactor` rewrites every record's message, arguments and
exception text, replacing

- the value of any ``Authorization`` header and any ``Bearer <token>``;
- every known secret (the master's token, the node secret, each node's token)
  wherever it appears.

:func:`redacting_logs` is a cleanup context of the master's app: it puts the
filter on the root logger's handlers (and on aiohttp's loggers) while the app
runs, and logs a request aiohttp cannot parse as one warning line (no
traceback).  The agent has the same filters (``rpiaas_agent.redact``, its
``cli``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..auth import REDACTED, redact

__all__ = ["REDACTED", "Redactor", "quiet_bad_requests", "redact", "redacting_logs"]

_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal")


class Redactor(logging.Filter):
    """Redacts credentials in a record (its message, arguments and traceback) in place."""

    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "rpiaas_redacted", False):
            return True
        secrets = list(self.secrets())
        try:
            message = record.getMessage()
        except Exception:  # a bad format: keep what there is, as text
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        record.rpiaas_redacted = True
        return True


def quiet_bad_requests(record: logging.LogRecord) -> bool:
    """A request aiohttp could not parse: one warning line, not an error with a traceback.

    Any port scanner on the lab network sends such requests; aiohttp answers them 400.
    """
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError) and exc.code == 400:
        record.msg, record.args = "bad request: %s", (" ".join(str(exc.message).split()),)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def redacting_logs(secrets: Callable[[web.Application], Iterable[str]]
                   ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: redact log records while the app runs (``secrets(app)``: what to hide)."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        known = list(secrets(app))
        redactor = Redactor(lambda: known)
        targets: list[logging.Filterer] = [*logging.getLogger().handlers,
                                           *(logging.getLogger(n) for n in _LOGGERS)]
        server = logging.getLogger("aiohttp.server")
        server.addFilter(quiet_bad_requests)  # before the redactor: it rewrites the message
        for target in targets:
            target.addFilter(redactor)
        try:
            yield
        finally:
            server.removeFilter(quiet_bad_requests)
            for target in targets:
                target.removeFilter(redactor)

    return ctx
