"""The master's web dashboard: a cluster overview at ``/`` and a page per node at ``/nodes/{name}``.

The pages are static HTML whose scripts (``/static/*.js``) read the JSON API
and draw everything in the browser, plots included.  Nothing is loaded from
anywhere but the master itself, so the dashboard works on a testbed without
internet access; a strict ``Content-Security-Policy`` on every response keeps
it that way (no inline script, no outside hosts).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .keys import REGISTRY

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "setup_dashboard"]

STATIC_DIR = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>No such node</title>
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="not-found"><h1>No such node</h1>
<p>This cluster has no node of that name. <a href="/">Back to the cluster</a></p></main></body>
</html>
"""

routes = web.RouteTableDef()


def _page(name: str) -> web.FileResponse:
    # Pages change with the package, not with the cluster: let the browser revalidate each time.
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})


@routes.get("/")
async def overview(request: web.Request) -> web.FileResponse:
    """The cluster at a glance: every node's state, CPU, memory and temperature."""
    return _page("index.html")


@routes.get("/nodes/{name}")
async def node_page(request: web.Request) -> web.FileResponse:
    """One node: its current state and plots of its history (the script reads the name from the URL)."""
    if request.app[REGISTRY].get(request.match_info["name"]) is None:
        raise web.HTTPNotFound(text=_NOT_FOUND_PAGE, content_type="text/html")
    return _page("node.html")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_SECURITY_HEADERS)


def setup_dashboard(app: web.Application) -> None:
    """Add the dashboard's pages and ``/static/`` assets to the master ``app``."""
    app.add_routes(routes)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    app.on_response_prepare.append(_security_headers)
