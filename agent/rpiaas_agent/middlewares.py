"""The agent's middlewares: JSON errors, a body size limit, and the bearer token.

- :func:`error_middleware` turns every failure into a JSON body
  ``{"error": "...", "status": N}``.  An unexpected exception is logged with
  its traceback and answered with a plain 500: no traceback reaches a client.
- :func:`body_limit_middleware` refuses a declared body larger than
  ``max_body_bytes`` with 413 before a handler runs; aiohttp's
  ``client_max_size`` catches the bodies that do not declare their length.
- :func:`token_middleware` guards the handlers marked with
  :func:`requires_token`: they need ``Authorization: Bearer <token>``,
  compared in constant time, else 401.  An agent without a token refuses them all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Callable, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from .keys import CONFIG

__all__ = ["body_limit_middleware", "error_middleware", "json_error", "requires_token",
           "token_middleware"]

log = logging.getLogger(__name__)

_REQUIRES_TOKEN = "_rpiaas_requires_token"
# Headers of an HTTP error worth keeping on its JSON version.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")

F = TypeVar("F", bound=Callable[..., Any])


def requires_token(handler: F) -> F:
    """Mark a handler as a control endpoint: :func:`token_middleware` checks the token."""
    setattr(handler, _REQUIRES_TOKEN, True)
    return handler


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error response: ``{"error": message, "status": status}``."""
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:  # redirects and the like pass as they are
            raise
        text = e.text or ""
        # aiohttp's default text is "404: Not Found"; say just the reason then
        message = e.reason if not text or text == f"{e.status}: {e.reason}" else text
        headers = {h: e.headers[h] for h in _KEPT_HEADERS if h in e.headers}
        return json_error(e.status, message, headers)
    except Exception:
        log.exception("error in %s %s", request.method, request.rel_url)
        return json_error(500, "internal error (see the agent's log)")


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[CONFIG].max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        return json_error(413, f"request body of {length} bytes is over the limit of {limit}")
    return await handler(request)


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests hides the expected token's length as well.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not getattr(request.match_info.handler, _REQUIRES_TOKEN, False):
        return await handler(request)
    expected = request.app[CONFIG].token
    challenge = {"WWW-Authenticate": 'Bearer realm="rpiaas-agent"'}
    if expected is None:
        return json_error(401, "control endpoints are off: this agent has no token configured",
                          challenge)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return json_error(401, "missing bearer token (Authorization: Bearer <token>)", challenge)
    if not hmac.compare_digest(_digest(given.strip()), _digest(expected)):
        log.warning("wrong token from %s for %s %s", request.remote, request.method,
                    request.rel_url.path)
        return json_error(401, "wrong token", challenge)
    return await handler(request)
