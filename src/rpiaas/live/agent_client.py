"""An async client of node agents: ``ping``, ``info`` and the task endpoints, with timeouts.

One :class:`aiohttp.ClientSession` shared by every request; the poller and
the control plane's live shell (:mod:`rpiaas.live.shell`) use it.  The task
endpoints need the node's own token: ``tokens`` maps an agent's base URL to
it (see :mod:`.auth`); no agent ever sees another node's token.  Answers are
read as bounded JSON (:mod:`.jsonbody`): a node that answers nonsense is a node
that failed, never a poll round that did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from . import jsonbody

__all__ = ["AgentClient", "AgentError"]


class AgentError(Exception):
    """An agent did not answer, answered late, or answered something that is not a report.

    ``status`` is the HTTP status when the agent answered with an error, else None.
    ``unsent`` says the request never reached the agent: no connection could be made
    (refused, reset or timed out while connecting), so the agent cannot have acted on it.
    A request that was sent and got no answer (read timeout, connection broken after
    sending) is not ``unsent``: the agent may have acted on it.
    """

    def __init__(self, message: str, status: int | None = None, unsent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unsent = unsent


# The largest answer read from an agent: a /tasks list of hundreds of documents is ~100 KB.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    """The answer's body, at most :data:`MAX_ANSWER_BYTES` (ValueError beyond)."""
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ValueError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Stale(Exception):
    """A connection that broke under a request (a kept-alive socket the agent had closed)."""


class AgentClient:
    """Talks to agents by base URL (``http://host:port``); use as ``async with``."""

    def __init__(self, timeout_s: float = 3.0, session: aiohttp.ClientSession | None = None,
                 tokens: Mapping[str, str] | None = None, keepalive: bool = False) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.tokens = dict(tokens or {})  # base URL -> that node's token
        self.keepalive = keepalive
        self._session = session
        self._owned = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Without keepalive, a fresh connection each time: a restarted agent never meets
            # a stale socket.  With it (the poller, a live run) connections are kept, which
            # halves a poll's CPU on both sides (a thousand polls a second on an emulated
            # testbed), and a request is made once more on a fresh one when a kept socket
            # turns out dead.
            connector = (aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0) if self.keepalive
                         else aiohttp.TCPConnector(force_close=True, limit=0))
            self._session = aiohttp.ClientSession(connector=connector)
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
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
            if not self.keepalive or isinstance(e, aiohttp.ClientConnectorError):
                raise AgentError(f"{base_url}{path}: {type(e).__name__}: {e}".rstrip(": ")) from e
            try:  # a kept-alive socket the agent had closed (it restarted): once more, afresh
                resp = await self.session.get(base_url + path, timeout=self.timeout)
            except (aiohttp.ClientError, TimeoutError, OSError) as e2:
                raise AgentError(f"{base_url}{path}: {type(e2).__name__}: {e2}".rstrip(": ")) from e2
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
                data = jsonbody.loads(await _read(resp))
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise AgentError(f"{base_url}/info: bad report: {e}") from e
        if not isinstance(data, dict):
            raise AgentError(f"{base_url}/info: expected a JSON object")
        return data

    # ------------------------------------------------------------ tasks (token)
    async def _call(self, method: str, base_url: str, path: str,
                    body: dict[str, Any] | None = None) -> Any:
        url = base_url + path
        token = self.tokens.get(base_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return await self._request(method, url, body, headers)
        except _Stale as e:
            if not self.keepalive:
                raise AgentError(f"{method} {url}: {e}") from None
            # a kept-alive socket the agent had closed (it restarted): once more, afresh;
            # repeating a start is safe, the agent refuses a second start of the same id
            try:
                return await self._request(method, url, body, headers)
            except _Stale as e2:
                raise AgentError(f"{method} {url}: {e2}") from None

    async def _request(self, method: str, url: str, body: dict[str, Any] | None,
                       headers: dict[str, str]) -> Any:
        try:
            async with self.session.request(method, url, json=body, headers=headers,
                                            timeout=self.timeout) as resp:
                raw = await _read(resp)
                if resp.status >= 400:
                    try:
                        message = str(jsonbody.loads(raw).get("error", ""))[:500]
                    except (ValueError, AttributeError):
                        message = ""
                    raise AgentError(f"{method} {url}: HTTP {resp.status}: "
                                     f"{message or resp.reason}", resp.status)
                return jsonbody.loads(raw) if raw else None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
            # no connection at all: nothing was stale, and nothing reached the agent
            raise AgentError(f"{method} {url}: {type(e).__name__}: {e}", unsent=True) from e
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
            raise _Stale(f"the connection broke: {type(e).__name__}: {e}".rstrip(": ")) from e
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
            raise AgentError(f"{method} {url}: {type(e).__name__}: {e}".rstrip(": ")) from e

    async def start_task(self, base_url: str, spec: dict[str, Any]) -> dict[str, Any]:
        """``POST /tasks``: the started task's document (AgentError with ``status`` 409 if
        refused)."""
        doc = await self._call("POST", base_url, "/tasks", spec)
        if not isinstance(doc, dict):
            raise AgentError(f"POST {base_url}/tasks: expected a task document")
        return doc

    async def tasks(self, base_url: str) -> list[dict[str, Any]]:
        """``GET /tasks``: the running tasks and the recently finished ones."""
        doc = await self._call("GET", base_url, "/tasks")
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), list):
            raise AgentError(f"GET {base_url}/tasks: expected {{\"tasks\": [...]}}")
        return [t for t in doc["tasks"] if isinstance(t, dict)]

    async def task(self, base_url: str, task_id: str) -> dict[str, Any] | None:
        """``GET /tasks/{id}``, or None if the agent does not know the task."""
        try:
            doc = await self._call("GET", base_url, f"/tasks/{task_id}")
        except AgentError as e:
            if e.status == 404:
                return None
            raise
        return doc if isinstance(doc, dict) else None

    async def kill_task(self, base_url: str, task_id: str) -> dict[str, Any] | None:
        """``DELETE /tasks/{id}``: the killed task's document, or None if unknown."""
        try:
            doc = await self._call("DELETE", base_url, f"/tasks/{task_id}")
        except AgentError as e:
            if e.status == 404:
                return None
            raise
        return doc if isinstance(doc, dict) else None
