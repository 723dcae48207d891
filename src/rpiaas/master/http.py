"""HTTP helpers of the master's routes: JSON errors, request bodies, the API's limits.

Every route module (:mod:`.routes`, :mod:`.runs_api`, :mod:`.boot`) and the
middleware read bodies and answer errors through these, so every error under
``/api/`` is a JSON object ``{"error": ...}`` naming the request field at fault,
and every body is bounded in size (the app's ``client_max_size``) and depth
(:func:`rpiaas.live.jsonbody.loads`).  :mod:`.openapi` documents the limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ..live import jsonbody

__all__ = ["MIN_RESOLUTION_S", "RECENT_STATES", "bearer", "body", "body_number", "error", "float_param",
           "json_body", "json_error"]

# Finer buckets than this are not a downsampling (and overflow the store's integer bucket index).
MIN_RESOLUTION_S = 0.001

# State changes a node's own document lists, newest last.
RECENT_STATES = 50

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
    415: web.HTTPUnsupportedMediaType, 503: web.HTTPServiceUnavailable}


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An API error response, ``{"error": message}``."""
    return web.json_response({"error": message}, status=status, headers=headers)


def error(status: int, message: str) -> web.HTTPException:
    """An API error to raise from a handler: ``{"error": message}`` with ``status``."""
    return _ERRORS[status](text=web.json_response({"error": message}).text,
                           content_type="application/json")


async def body(request: web.Request, allowed: Sequence[str], required: Sequence[str] = ()
               ) -> dict[str, Any]:
    """The request's JSON object, with only ``allowed`` fields and every ``required`` one."""
    if not request.can_read_body:
        data: Any = {}
    else:
        if request.content_type != "application/json":
            raise error(415, f"expected a JSON body (Content-Type: application/json), "
                             f"got {request.content_type}")
        data = await json_body(request)
    if not isinstance(data, dict):
        raise error(400, f"body: expected a JSON object, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise error(400, f"{key}: unknown field (expected {', '.join(allowed)})")
    for key in required:
        if key not in data:
            raise error(400, f"{key}: missing field")
    return data


async def json_body(request: web.Request) -> Any:
    """The request's body as JSON, bounded in size (the app's limit) and depth, else 400."""
    try:
        return jsonbody.loads(await request.read())
    except ValueError as e:
        raise error(400, f"body: {e}") from None


def body_number(data: dict[str, Any], name: str, minimum: float = 0.0,
                positive: bool = False) -> float:
    """Field ``name``: a finite number >= ``minimum`` (> 0 if ``positive``), else 400."""
    value = data[name]
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or value < minimum or (positive and value <= 0)):
        what = "a positive number" if positive else f"a finite number >= {minimum:g}"
        raise error(400, f"{name}: expected {what}, got {value!r}")
    return float(value)


def float_param(request: web.Request, name: str) -> float | None:
    """Query parameter ``name``: None if absent or empty, else a finite number >= 0 (else 400)."""
    given = request.query.getall(name, [])
    if len(given) > 1:  # not silently the first of several
        raise error(400, f"{name}: expected at most one value, got {len(given)}")
    text = given[0] if given else None
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise error(400, f"{name}: expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise error(400, f"{name}: expected a finite number >= 0, got {text!r}")
    return value


def bearer(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None if the header is not that."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def int_param(request: web.Request, name: str) -> int | None:
    """Query parameter ``name``: None if absent or empty, else an integer >= 0 (else 400)."""
    given = request.query.getall(name, [])
    if len(given) > 1:
        raise error(400, f"{name}: expected at most one value, got {len(given)}")
    text = given[0] if given else None
    if text is None or text == "":
        return None
    if not text.isdigit() or not text.isascii() or len(text) > 12:
        raise error(400, f"{name}: expected a whole number >= 0, got {text!r}")
    return int(text)
