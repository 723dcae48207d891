"""Middleware of the master: JSON errors under ``/api/``, a body size limit, the bearer token.

- :func:`json_errors` turns aiohttp's plain-text errors (unknown path, wrong
  method, ...) under ``/api/`` into ``{"error": ...}`` for API clients.
- :func:`body_limit` refuses a declared body over ``max_body_bytes`` with 413
  before any handler reads it; aiohttp's ``client_max_size`` (set to the same
  limit) stops the bodies that do not declare their length.
- :func:`bearer_token` guards every mutating call under ``/api/`` (any method
  but GET, HEAD and OPTIONS): it needs ``Authorization: Bearer <token>``,
  compared in constant time, else 401.  A master without a token refuses them all.
  Agents push task ends to ``AGENT_PATHS`` with their own node's token instead
  (see :mod:`.auth`); the node is then ``request[NODE]``, and the handler
  accepts only what concerns that node.  The routes of ``SELF_AUTH_ROUTES``
  (a node's boot report) check who calls them themselves.

An exception no handler expected answers 500 with a JSON body under
``/api/`` too (its traceback goes to the log, with credentials redacted).
No message names a credential or a header's value.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from ..auth import same_token
from .http import bearer, json_error
from .keys import CONFIG, NODE, NODE_TOKENS

__all__ = ["SAFE_METHODS", "bearer_token", "body_limit", "json_errors"]

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AGENT_PATHS = frozenset({"/api/v1/task-ended"})
# route templates whose handler authenticates the caller (by address or a per-node token)
SELF_AUTH_ROUTES = frozenset({"/api/v1/nodes/{name}/booted"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rpiaas-master"'}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if (not request.path.startswith("/api/") or e.status < 400
                or e.content_type == "application/json"):
            raise
        return json_error(e.status, e.reason, {
            k: v for k, v in e.headers.items() if k.lower() in ("allow", "www-authenticate")})
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        log.exception("error in %s %s", request.method, request.path)
        return json_error(500, "internal error (see the master's log)")


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[CONFIG].max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        return json_error(413, f"request body of {length} bytes is over the limit of {limit}")
    return await handler(request)


@web.middleware
async def bearer_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (request.method in SAFE_METHODS or not request.path.startswith("/api/")
            or request.match_info.http_exception is not None):  # 404 and 405 answer as they are
        return await handler(request)
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical in SELF_AUTH_ROUTES:
        return await handler(request)
    given = bearer(request)
    if request.path in AGENT_PATHS:
        tokens = request.app[NODE_TOKENS]
        if tokens.secret is None:
            return json_error(401, "node reports are off: this master has no node secret "
                                   "configured", _CHALLENGE)
        if given is None:
            return json_error(401, "missing bearer token (Authorization: Bearer <token>)",
                              _CHALLENGE)
        node = tokens.node_of(given)
        if node is None:
            log.warning("no node's token from %s for %s %s", request.remote, request.method,
                        request.path)
            return json_error(401, "wrong token", _CHALLENGE)
        request[NODE] = node
        return await handler(request)
    expected = request.app[CONFIG].token
    if expected is None:
        return json_error(401, "mutating endpoints are off: this master has no token configured",
                          _CHALLENGE)
    if given is None:
        return json_error(401, "missing bearer token (Authorization: Bearer <token>)", _CHALLENGE)
    if not same_token(given, expected):
        log.warning("wrong token from %s for %s %s", request.remote, request.method, request.path)
        return json_error(401, "wrong token", _CHALLENGE)
    return await handler(request)
