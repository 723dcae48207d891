"""An async client of node agents: ``ping`` and ``info`` with a timeout per request.

One :class:`aiohttp.ClientSession` shared by every request; the poller and,
later, the control plane's live shell use it.
"""

from __future__ import annotations

from typing import Any

import aiohttp

__all__ = ["AgentClient", "AgentError"]


class AgentError(Exception):
    """An agent did not answer, answered late, or answered something that is not a report."""


class AgentClient:
    """Talks to agents by base URL (``http://host:port``); use as ``async with``."""

    def __init__(self, timeout_s: float = 3.0, session: aiohttp.ClientSession | None = None) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._owned = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Fresh connections: a restarted agent must not meet a stale keep-alive socket.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=0))
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owned:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _get(self, base_url: str, path: str) -> aiohttp.ClientResponse:
        try:
            resp = await self.session.get(base_url + path, timeout=self.timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise AgentError(f"{base_url}{path}: {type(e).__name__}: {e}".rstrip(": ")) from e
        if resp.status != 200:
            resp.release()
            raise AgentError(f"{base_url}{path}: HTTP {resp.status}")
        return resp

    async def ping(self, base_url: str) -> bool:
        """Whether the agent at ``base_url`` answers ``GET /ping`` with 200 in time."""
        try:
            resp = await self._get(base_url, "/ping")
        except AgentError:
            return False
        resp.release()
        return True

    async def info(self, base_url: str) -> dict[str, Any]:
        """The agent's ``GET /info`` report; :class:`AgentError` if it fails or is late."""
        resp = await self._get(base_url, "/info")
        try:
            async with resp:
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise AgentError(f"{base_url}/info: bad report: {e}") from e
        if not isinstance(data, dict):
            raise AgentError(f"{base_url}/info: expected a JSON object")
        return data
