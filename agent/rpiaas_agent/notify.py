"""Pushing a task's end to the master: POST the final task document to its ``notify_url``.

Each push is a background job: it retries, with a delay doubling from
``FIRST_DELAY_S`` to ``MAX_DELAY_S``, until an answer is 2xx or ``GIVE_UP_S``
have passed.  Redirects are not followed (the token must go only where the
master said).  The master also polls ``GET /tasks``, so a push given up loses
nothing; it only makes the master learn of the end sooner.

The HTTP client session lives in a cleanup context (:meth:`Notifier.run`).
At shutdown the jobs get ``SHUTDOWN_GRACE_S`` to deliver the ends of the
tasks that the shutdown killed, then are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from . import __version__

__all__ = ["Notifier"]

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
GIVE_UP_S = 600.0
REQUEST_TIMEOUT_S = 10.0
SHUTDOWN_GRACE_S = 2.0


class Notifier:
    """Delivers documents to URLs with ``Authorization: Bearer <token>``, retrying."""

    def __init__(self, token: str | None, local_address: str | None = None) -> None:
        self.token = token
        self.local_address = local_address  # the source address of the pushes (None: any)
        self.first_delay_s = FIRST_DELAY_S
        self._session: aiohttp.ClientSession | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    def push(self, url: str, document: dict[str, Any], what: str | None = None,
             token: bool = True) -> None:
        """Deliver ``document`` to ``url`` in the background (never blocks).

        ``what`` names it in the log (default: the end of task ``document["id"]``);
        ``token=False`` sends it without the agent's token.
        """
        what = what or f"the end of task {document.get('id')}"
        if self._session is None or self._session.closed:
            log.warning("not pushing %s to %s: the agent is stopping", what, url)
            return
        job = asyncio.ensure_future(self._deliver(self._session, url, document, what, token))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _deliver(self, session: aiohttp.ClientSession, url: str,
                       document: dict[str, Any], what: str, token: bool) -> None:
        headers = {"User-Agent": f"rpiaas-agent/{__version__}"}
        if self.token is not None and token:
            headers["Authorization"] = f"Bearer {self.token}"
        give_up = time.monotonic() + GIVE_UP_S
        delay, attempt = self.first_delay_s, 1
        while True:
            try:
                async with session.post(url, json=document, headers=headers,
                                        allow_redirects=False) as r:
                    if 200 <= r.status < 300:
                        log.debug("%s pushed to %s", what, url)
                        return
                    why = f"HTTP {r.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                why = str(e) or type(e).__name__
            if time.monotonic() + delay > give_up:
                log.warning("giving up pushing %s to %s after %d tries (%s)", what, url,
                            attempt, why)
                return
            log.info("pushing %s to %s failed (%s); again in %g s", what, url, why, delay)
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                log.warning("not pushing %s to %s: the agent is stopping (%s)", what, url, why)
                raise
            delay, attempt = min(delay * 2, MAX_DELAY_S), attempt + 1

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """A cleanup context: the client session, and the pending pushes at shutdown."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        connector = aiohttp.TCPConnector(
            local_addr=(self.local_address, 0) if self.local_address else None)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        try:
            yield
            pending = list(self._jobs)
            if pending:
                await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
            for job in pending:
                job.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await self._session.close()
