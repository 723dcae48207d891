"""Middleware of the master: every error under ``/api/`` is a JSON ``{"error": ...}``."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["json_errors"]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's plain-text errors (unknown path, wrong method, ...) into JSON for API clients."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if (not request.path.startswith("/api/") or e.status < 400
                or e.content_type == "application/json"):
            raise
        return web.json_response({"error": e.reason}, status=e.status, headers={
            k: v for k, v in e.headers.items() if k.lower() == "allow"})
