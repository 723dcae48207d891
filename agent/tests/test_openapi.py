"""The agent's OpenAPI document: valid, complete, and what the running agent really answers.

Schemathesis generates requests from the document (valid ones and, for the
negative checks, invalid ones) and sends them to an agent served on loopback
in a background thread; every answer must be no server error, have a
documented status and content type, and match the documented schema.

``POST /tasks`` is fuzzed too, but must not start the tasks it makes up (a
valid request may ask for a 30-day sleep or an hour of CPU).  So before the
fuzzing, a task that holds every core of the fuzzed agent is started
(``BLOCKER``, a sleep): a generated request that passes validation is then
refused with 409 for want of free cores, after being checked like any other.
The last test checks that the blocker is still the only task.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from rpiaas_agent import Config, create_app
from rpiaas_agent.openapi import OPENAPI_PATH, openapi_document

from .helpers import LAX_AIOHTTP_PARSER, TOKEN, test_config

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, unsupported_method]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Small and seeded: a few seconds per operation, the same cases on every run.
BLOCKER = "fuzzing-holds-every-core"
SECURED = {("GET", "/config"), ("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/tasks/{id}"),
           ("DELETE", "/tasks/{id}")}
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


class ServedApp:
    """An aiohttp app served on 127.0.0.1 by its own event loop in a background thread.

    The app's cleanup contexts (background samplers, the master's poller and
    store) run as under ``aiohttp.web.run_app``.
    """

    def __init__(self, *apps: web.Application) -> None:
        self.apps = apps
        self.urls: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.urls[0]

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self) -> None:
        for app in self.apps:
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._runners.append(runner)
            host, port = runner.addresses[0][:2]
            self.urls.append(f"http://{host}:{port}")

    async def _stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()

    def __enter__(self) -> ServedApp:
        self._thread.start()
        self._run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


def routes_of(app: web.Application, prefix: str = "/") -> set[tuple[str, str]]:
    """``(METHOD, path template)`` of every route ``app`` registers under ``prefix``, HEAD aside."""
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and path.startswith(prefix):
            out.add((route.method, path))
    return out


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in methods}


def test_the_document_is_valid_openapi() -> None:
    doc = openapi_document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert openapi_document() is not doc and openapi_document() == doc  # a fresh copy


def test_the_document_lists_exactly_the_apps_routes(tmp_path: Path) -> None:
    app = create_app(test_config(tmp_path))
    assert routes_of(app) == documented(openapi_document())
    # the token-guarded endpoints say so
    doc = openapi_document()
    secured = {(m.upper(), p) for p, item in doc["paths"].items() for m, op in item.items()
               if m != "parameters" and "security" in op}
    assert secured == SECURED


def test_the_agent_serves_its_document(tmp_path: Path) -> None:
    with ServedApp(create_app(test_config(tmp_path))) as agent:
        r = requests.get(agent.url + OPENAPI_PATH, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == json.loads(json.dumps(openapi_document()))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    tmp_path = tmp_path_factory.mktemp("agent")
    with ServedApp(create_app(test_config(tmp_path, work_dir=str(tmp_path)))) as served:
        # one CPU sample taken, so /info has usage ratios and not only nulls
        deadline = 50
        while requests.get(served.url + "/info", timeout=10).json()["cpu"]["usage_ratio"] is None:
            deadline -= 1
            assert deadline > 0, "no CPU sample after 5 s"
            threading.Event().wait(0.1)
        cores = requests.get(served.url + "/info", timeout=10).json()["tasks"]["cores"]
        blocker = {"id": BLOCKER, "kind": "sleep", "duration_s": 3600, "cores": cores}
        r = requests.post(served.url + "/tasks", json=blocker, headers=AUTH, timeout=10)
        assert r.status_code == 201, r.text
        yield served


schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# A body over max_body_bytes is refused before it is read: 413 is a rejection too.
schema.config.checks.negative_data_rejection.expected_statuses.append("413")
if LAX_AIOHTTP_PARSER:
    # aiohttp < 3.9 answers the QUERY method with its parser's 400, before the agent sees it
    coverage = schema.config.phases.coverage
    coverage.unexpected_methods = coverage.unexpected_methods - {"query"}


@schema.parametrize()
@FUZZ
def test_answers_conform_to_the_document(case: schemathesis.Case, agent: ServedApp) -> None:
    """With the token: every answer documented, well-formed and no server error."""
    checks = [*CHECKS, negative_data_rejection]
    case.call_and_validate(base_url=agent.url, headers=AUTH, checks=checks, timeout=10)


@schema.include(path_regex="^/(config|tasks)").parametrize()
@FUZZ
def test_the_control_endpoints_need_the_token(case: schemathesis.Case, agent: ServedApp) -> None:
    """Without the token, or with a wrong one, ``/config`` and ``/tasks`` are 401, as documented."""
    if (case.method, case.path) not in SECURED:  # the coverage phase tries other methods: 405
        return
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        sent = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = {**sent, **headers}
        response = case.call(base_url=agent.url, timeout=10)
        # a body over the limit is refused before anything else, the token included
        oversized = len(response.request.body or b"") > Config().max_body_bytes
        expected = 413 if oversized else 401
        assert response.status_code == expected, (headers, response.text)
        assert response.json() == {"error": response.json()["error"], "status": expected}
        case.validate_response(response, checks=CHECKS)


def test_the_fuzzing_started_nothing(agent: ServedApp) -> None:
    r = requests.get(agent.url + "/tasks", headers=AUTH, timeout=10)
    assert [(t["id"], t["state"]) for t in r.json()["tasks"]] == [(BLOCKER, "running")]
