"""Arbitrary requests to every route of the master's and the agent's APIs (Hypothesis).

Each example picks a route of the app's own router (its path parameters
filled with a real name or anything), a method, a credential (the master's
token, a node's, another's, none, garbage, in any scheme), headers and a body:
arbitrary JSON, JSON with the route's own field names and arbitrary values,
nesting far deeper than allowed, or bytes.  Whatever comes, the answer is
never a 5xx, an error is in the API's documented JSON format, and no answer
and no log line holds a credential.  The apps run in-process for volume; a
smoke run sends the same to a real master and agent on loopback.

The number of requests sent and of those refused as documented is printed at
the end of each test (``pytest -s``) and checked to be most of them.
"""

from __future__ import annotations

import json
import logging
import string
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rpiaas_agent import create_app as agent_app

from agent.tests.helpers import InProcessAgent, in_process, test_config
from rpiaas.auth import node_token
from rpiaas.master import create_app, load_master_config
from rpiaas.testbed.local import start_local_testbed

from .test_security import _request

MASTER_TOKEN = "fuzz-master-token-0123456789"
SECRET = "fuzz-node-secret-0123456789"
NODE1, NODE2 = "node1.c1.rpiaas.test", "node2.c1.rpiaas.test"
TOKEN1, TOKEN2 = node_token(SECRET, NODE1), node_token(SECRET, NODE2)
CREDENTIALS = (MASTER_TOKEN, SECRET, TOKEN1, TOKEN2)

# ---------------------------------------------------------------- strategies
_printable = st.text(string.ascii_letters + string.digits + string.punctuation + " ", max_size=40)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=16)
# the field names the routes know, with anything as their values
_FIELDS = ("before", "resolution", "uptime_s", "scenario", "file", "timescale", "task_kind",
           "id", "state", "kind", "duration_s", "cores", "mem_mb", "work_core_s", "argv",
           "ended_s", "exit_status", "notify_url", "io_mb", "cluster", "workload", "policy")
_known = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=5)


def _deep(depth: int) -> bytes:
    return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"


_bodies = st.one_of(
    st.none(),
    _json.map(lambda v: json.dumps(v).encode()),
    _known.map(lambda v: json.dumps(v).encode()),
    st.integers(33, 20_000).map(_deep),
    st.binary(max_size=64),
    st.sampled_from([b"NaN", b"[Infinity]", b'{"before": NaN}', b"\xff\xfe", b"{", b"1e999"]),
)

pytestmark = pytest.mark.integration


def _auth(tokens: dict[str, str]) -> st.SearchStrategy[str | None]:
    """Mostly a token the API takes (so bodies get parsed), else anything."""
    valid = st.sampled_from([f"Bearer {t}" for t in tokens.values()])
    given_token = st.one_of(st.sampled_from([*tokens.values(), *CREDENTIALS]), _printable)
    other = st.one_of(st.none(), st.tuples(st.sampled_from(["Bearer", "bearer", "Basic", "", "Token"]),
                                           given_token).map(lambda t: f"{t[0]} {t[1]}".strip()))
    return st.integers(0, 9).flatmap(lambda i: valid if i < 7 else other)


_content_types = st.just("application/json") | st.sampled_from(["application/json", "application/json; charset=utf-8",
                                  "text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "", "*/*"])
_extra = st.dictionaries(st.sampled_from(["Accept", "X-Forwarded-For", "Origin", "Cookie",
                                          "X-Requested-With", "If-None-Match"]),
                         _printable, max_size=3)


def _routes(app: web.Application, prefix: str) -> list[tuple[str, str]]:
    """Every (method, path template) of ``app`` under ``prefix``; HEAD mirrors GET, left out."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or info.get("prefix")
        if path and path.startswith(prefix) and route.method not in ("*", "HEAD"):
            out.append((route.method, path))
    return sorted(set(out))


def _route(routes: list[tuple[str, str]], names: list[str]) -> st.SearchStrategy[tuple[str, str]]:
    """A route, those taking a body twice as often as the others; its parameters filled."""
    mutating = [r for r in routes if r[0] in ("POST", "PUT", "PATCH")]
    pick = st.sampled_from(mutating) | st.sampled_from(routes)
    return pick.flatmap(lambda r: st.tuples(st.just(r[0]), _fill(r[1], names)))


def _fill(template: str, names: list[str]) -> st.SearchStrategy[str]:
    if "{" not in template:
        return st.just(template)
    segment = st.one_of(st.sampled_from(names),
                        st.text(string.ascii_letters + string.digits + "-._~%", min_size=1,
                                max_size=30))
    parts = template.split("/")
    return st.tuples(*(segment if p.startswith("{") else st.just(p) for p in parts)).map("/".join)


# ---------------------------------------------------------------- checks
class Capture(logging.Handler):
    """Every log line, formatted as a handler writes it (traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)  # before the app starts: it puts its redactor on every handler
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _check(status: int, headers: Any, body: bytes, api: str, counts: Counter[str]) -> None:
    counts["sent"] += 1
    counts[str(status)] += 1
    assert status < 500, (status, body[:300])
    for secret in CREDENTIALS:
        assert secret.encode() not in body and secret not in str(dict(headers))
    if status >= 400:
        doc = json.loads(body)
        if api == "master":
            assert set(doc) == {"error"} and isinstance(doc["error"], str), doc
        else:
            assert set(doc) == {"error", "status"} and doc["status"] == status, doc
        counts["refused as documented"] += 1
    else:
        counts["accepted"] += 1


def _report(name: str, counts: Counter[str], capture: Capture | None = None) -> None:
    print(f"\n{name}: {dict(counts)}" + (f", {len(capture.lines)} log lines" if capture else ""))


def _master_config(tmp_path: Path) -> Path:
    (tmp_path / "master-token").write_text(MASTER_TOKEN + "\n")
    (tmp_path / "node-secret").write_text(SECRET + "\n")
    path = tmp_path / "master.yaml"
    # node1 at 127.0.0.1, where the test client calls from: its boot reports can be accepted
    path.write_text("cluster:\n  clusters:\n    - domain: c1.rpiaas.test\n      prefix: 127.0.0\n"
                    "      nodes:\n        - {hostname: node1, type: rpi4b, suffix: 1}\n"
                    "        - {hostname: node2, type: rpi4b, suffix: 12}\n"
                    "poll_interval_s: 60\npoll_timeout_s: 0.2\nstore: history.db\n"
                    "agents:\n  node1.c1.rpiaas.test: 127.0.0.1:9\n  node2.c1.rpiaas.test: 127.0.0.1:9\n"
                    "token_file: master-token\nnode_secret_file: node-secret\n")
    return path


def _fuzz(app_client: InProcessAgent, api: str, names: list[str], tokens: dict[str, str],
          counts: Counter[str], examples: int) -> None:
    route = _route(_routes(app_client.app, "/api/" if api == "master" else "/"), names)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(route=route, auth=_auth(tokens), ctype=_content_types, extra=_extra, body=_bodies)
    def one(route: tuple[str, str], auth: str | None, ctype: str, extra: dict[str, str],
            body: bytes | None) -> None:
        method, path = route
        headers = dict(extra)
        if auth is not None:
            headers["Authorization"] = auth
        if body is not None and method != "GET":
            headers["Content-Type"] = ctype
        reply = app_client.request(method, path, headers=headers,
                                   data=body if method != "GET" else None)
        _check(reply.status, reply.headers, reply.body, api, counts)

    one()


def test_the_master_answers_anything_without_5xx_or_leaking(tmp_path: Path,
                                                            capture: Capture) -> None:
    counts: Counter[str] = Counter()
    app = create_app(load_master_config(_master_config(tmp_path)))
    with InProcessAgent(app) as master:
        _fuzz(master, "master", [NODE1, NODE2, "ghost"],
              {"master": MASTER_TOKEN, "node1": TOKEN1, "node2": TOKEN2}, counts, 1500)
    _report("master, in-process", counts, capture)
    for line in capture.lines:
        assert not any(secret in line for secret in CREDENTIALS), line
        assert "Traceback" not in line, line
    assert counts["sent"] >= 1500 and counts["refused as documented"] > counts["sent"] // 4


def test_the_agent_answers_anything_without_5xx_or_leaking(tmp_path: Path,
                                                           capture: Capture) -> None:
    counts: Counter[str] = Counter()
    with in_process(test_config(tmp_path, token=TOKEN1, work_dir=str(tmp_path))) as agent:
        _fuzz(agent, "agent", ["x", "nap"], {"node1": TOKEN1}, counts, 1500)
    _report("agent, in-process", counts, capture)
    for line in capture.lines:
        assert not any(secret in line for secret in CREDENTIALS), line
        assert "Traceback" not in line, line
    assert counts["sent"] >= 1500 and counts["refused as documented"] > counts["sent"] // 4


def _smoke(url: str, api: str, routes: st.SearchStrategy[tuple[str, str]],
           tokens: dict[str, str], secrets: list[str], counts: Counter[str]) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(route=routes, auth=_auth(tokens), ctype=_content_types, body=_bodies)
    def one(route: tuple[str, str], auth: str | None, ctype: str, body: bytes | None) -> None:
        method, path = route
        headers = {"Content-Type": ctype} if body is not None else {}
        if auth is not None:
            headers["Authorization"] = auth
        status, got_headers, answer = _request(
            url, method, path, body if method != "GET" else None, headers)
        assert not any(s.encode() in answer for s in secrets)
        _check(status, got_headers, answer, api, counts)

    one()


def test_real_processes_answer_anything_without_5xx_or_leaking(tmp_path: Path) -> None:
    """The smoke run: the same requests over real sockets to a master and an agent."""
    counts: Counter[str] = Counter()
    with start_local_testbed(tmp_path, 2, poll_interval_s=0.5, master_port=0) as tb:
        names = list(tb.agents)
        secrets = [tb.master_token, tb.node_secret_file.read_text().strip(),
                   *(tb.node_token(n) for n in names)]
        targets = [("master", tb.master_url, create_app(load_master_config(tb.dir / "master.yaml"))),
                   ("agent", tb.agents[names[0]].url, agent_app(test_config(tmp_path)))]
        for api, url, app in targets:
            routes = _route(_routes(app, "/api/" if api == "master" else "/"), [*names, "ghost"])
            tokens = {"master": tb.master_token, **{n: tb.node_token(n) for n in names}} \
                if api == "master" else {names[0]: tb.node_token(names[0])}

            _smoke(url, api, routes, tokens, secrets, counts)
        logs = "\n".join(p.read_text(errors="replace") for p in (tb.dir / "logs").iterdir())
    _report("real processes", counts)
    assert not any(secret in logs for secret in secrets)
    assert "Traceback" not in logs
    assert counts["sent"] >= 300
