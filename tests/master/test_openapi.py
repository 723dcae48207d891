"""The master's OpenAPI document: valid, complete, and what the running master really answers.

Schemathesis generates requests from the document, valid and invalid ones,
and sends them to a master served on loopback in a background thread.  It
polls three nodes: one with an in-process agent, two with nothing listening
on their loopback port (offline).  Its store starts with an hour of samples
and state changes, so nodes and histories are not empty.  Every answer must
be no server error, have a documented status and content type and match the
documented schema; invalid input must be refused with a 4xx.  POSTs are sent
with the token, and again without it or with a wrong one: 401.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from openapi_spec_validator import validate
from rpiaas_agent import create_app as create_agent

from agent.tests.helpers import free_port
from agent.tests.helpers import test_config as agent_config
from agent.tests.test_openapi import CHECKS, FUZZ, ServedApp, documented, routes_of
from rpiaas.auth import node_token
from rpiaas.master import create_app, load_master_config
from rpiaas.master.boot import BOOT_PATH
from rpiaas.master.openapi import OPENAPI_PATH, openapi_document
from rpiaas.store import Sample, open_store

TOKEN = "master-token-0123456789"
NODE_SECRET = "node-secret-0123456789"
NODE_ANSWERS: Counter[tuple[str, int]] = Counter()  # (operation, status) of the node-token calls
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMES = [f"node{i}.c1.rpiaas.test" for i in (1, 2, 3)]
HOUR_S = 3600


def _fill_store(path: Path, now_s: float) -> None:
    """An hour of samples every 10 s for two nodes (one with per-core use and temperature)."""
    with open_store(str(path)) as store:
        for i, name in enumerate(NAMES[:2]):
            store.add_samples(
                Sample(node=name, time_s=now_s - HOUR_S + t, cpu_util=(t % 100) / 100,
                       mem_used_mb=100.0 + t / 10, mem_total_mb=1024.0, load1=t / 1000,
                       disk_used_ratio=0.25, temperature_c=40.0 + t / 600 if i == 0 else None,
                       cpu_per_core=(0.1, 0.2, 0.3, 0.4) if i == 0 else None)
                for t in range(0, HOUR_S, 10))
            store.record_state(name, now_s - HOUR_S, True)
        store.record_state(NAMES[1], now_s - 60, False, "connection refused")


@contextlib.contextmanager
def _master(tmp_path: Path, agent_url: str, node_secret: bool = False) -> Iterator[ServedApp]:
    """A master with the token, its first node polling ``agent_url``, the others offline.

    With ``node_secret`` it takes its nodes' tokens too, and node1 is at 127.0.0.1, where
    the tests call from: its boot reports can be accepted.
    """
    _fill_store(tmp_path / "history.db", time.time())
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "secret").write_text(NODE_SECRET + "\n")
    ports = [agent_url.rsplit(":", 1)[1], free_port(), free_port()]
    agents = "".join(f'  {name}: "127.0.0.1:{port}"\n' for name, port in zip(NAMES, ports, strict=True))
    path = tmp_path / "master.yaml"
    path.write_text("cluster:\n  clusters:\n"
                    f"    - {{domain: c1.rpiaas.test, prefix: {'127.0.0' if node_secret else '127.0.1'}, "
                    "count: 3, type: rpi4b}\n"
                    "poll_interval_s: 1\npoll_timeout_s: 0.5\nstore: history.db\n"
                    f"token_file: token\n{'node_secret_file: secret' if node_secret else ''}\n"
                    f"agents:\n{agents}")
    with ServedApp(create_app(load_master_config(path))) as master:
        yield master


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ServedApp(create_agent(agent_config(tmp_path_factory.mktemp("agent")))) as served:
        yield served.url


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory, agent: str) -> Iterator[str]:
    """A master for the reading calls, its history left alone by the mutating ones."""
    with _master(tmp_path_factory.mktemp("reader"), agent) as master:
        yield master.url


@pytest.fixture(scope="module")
def node_side(tmp_path_factory: pytest.TempPathFactory, agent: str) -> Iterator[str]:
    """A master that takes its nodes' tokens: the calls agents make, signed as they sign them."""
    with _master(tmp_path_factory.mktemp("nodes"), agent, node_secret=True) as master:
        yield master.url


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory, agent: str) -> Iterator[str]:
    with _master(tmp_path_factory.mktemp("writer"), agent) as master:
        yield master.url


# ---------------------------------------------------------------- the document
def test_the_document_is_valid_openapi() -> None:
    doc = openapi_document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert openapi_document() is not doc and openapi_document() == doc  # a fresh copy


def test_the_document_lists_exactly_the_api_routes(tmp_path: Path, agent: str) -> None:
    with _master(tmp_path, agent) as master:
        app = master.apps[0]
        assert (routes_of(app, "/api/v1/") | routes_of(app, "/metrics") | routes_of(app, "/healthz")
                == documented(openapi_document()))
    # the mutating calls, and only they, need the token; a boot report is the node's own
    # (its address or its boot token: 403 otherwise, tested in test_boot.py)
    doc = openapi_document()
    for method, path in documented(doc):
        operation = doc["paths"][path][method.lower()]
        refusal = "403" if path == BOOT_PATH else "401"
        assert ("security" in operation) == (method in ("POST", "DELETE")), (method, path)
        assert (refusal in operation["responses"]) == (method in ("POST", "DELETE")), (method, path)


def test_the_master_serves_its_document(reader: str) -> None:
    r = requests.get(reader + OPENAPI_PATH, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == json.loads(json.dumps(openapi_document()))


def test_the_fixture_history_is_not_trivial(reader: str) -> None:
    r = requests.get(f"{reader}/api/v1/nodes/{NAMES[0]}/history",
                     params={"resolution": "60"}, timeout=10)
    assert r.status_code == 200 and len(r.json()["samples"]) >= 60
    node = requests.get(f"{reader}/api/v1/nodes/{NAMES[1]}", timeout=10).json()
    assert [s["online"] for s in node["states"]][:2] == [True, False]


# ---------------------------------------------------------------- the answers
schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE,
                                       schemathesis.GenerationMode.NEGATIVE])


@schema.hook
def map_case(context: Any, case: schemathesis.Case) -> schemathesis.Case:
    # Requests with a valid path mostly name a node the master knows, so that answers other than 404
    # get checked too; one in four keeps its made-up name.
    name = (case.path_parameters or {}).get("name")
    components = case.meta.components if case.meta is not None else {}
    made_invalid = any(getattr(where, "value", where) == "path" and info.mode.is_negative
                       for where, info in components.items())
    if not made_invalid and isinstance(name, str) and len(name) % 4:
        case.path_parameters = {**(case.path_parameters or {}), "name": NAMES[len(name) % 3]}
    return case


CHECKS_WITH_NEGATIVE = [*CHECKS, schemathesis.checks.negative_data_rejection]


@schema.include(method="GET").parametrize()
@FUZZ
def test_reading_answers_conform(case: schemathesis.Case, reader: str) -> None:
    case.call_and_validate(base_url=reader, checks=CHECKS_WITH_NEGATIVE, timeout=10)


@schema.include(method="POST").parametrize()
@FUZZ
def test_mutating_answers_conform(case: schemathesis.Case, writer: str) -> None:
    case.call_and_validate(base_url=writer, headers=AUTH, checks=CHECKS_WITH_NEGATIVE, timeout=10)


@schema.include(method="POST").parametrize()
@FUZZ
def test_mutating_calls_without_the_token_are_401(case: schemathesis.Case, writer: str) -> None:
    if case.method != "POST" or case.path == BOOT_PATH:  # other methods: 405; boot: 403
        return
    sent = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        case.headers = {**sent, **auth}
        response = case.call(base_url=writer, timeout=10)
        assert response.status_code == 401, (auth, response.text)
        challenge = {k.lower(): v for k, v in response.headers.items()}["www-authenticate"]
        assert challenge[0].startswith("Bearer"), challenge
        case.validate_response(response, checks=CHECKS)


@schema.include(operation_id=["taskEnded", "nodeBooted"]).parametrize()
@FUZZ
def test_agent_calls_with_their_nodes_tokens_conform(case: schemathesis.Case, node_side: str) -> None:
    """The calls agents make (a task's end, a boot report), signed with the node's own token:
    the body is read and checked against the published schema, so a document outside it
    must be refused (4xx), and one inside it answered as documented."""
    name = (case.path_parameters or {}).get("name")
    token = node_token(NODE_SECRET, name if name in NAMES else NAMES[0])
    response = case.call_and_validate(base_url=node_side, headers={"Authorization": f"Bearer {token}"},
                                      checks=CHECKS_WITH_NEGATIVE, timeout=10)
    NODE_ANSWERS[(case.operation.definition.raw["operationId"], response.status_code)] += 1


def test_the_node_token_fuzzing_reached_the_checks() -> None:
    """Its pushes got past the token: some taken, some refused by the schema (so it ran first)."""
    print(dict(NODE_ANSWERS))
    assert NODE_ANSWERS[("taskEnded", 200)] and NODE_ANSWERS[("taskEnded", 400)], NODE_ANSWERS
    assert NODE_ANSWERS[("nodeBooted", 200)], NODE_ANSWERS


# ---------------------------------------------------------------- what schemathesis found
def test_a_repeated_query_parameter_is_400_not_its_first_value(reader: str) -> None:
    url = f"{reader}/api/v1/nodes/{NAMES[0]}/history"
    for query in ("start=&start=", "start=1&start=2", "resolution=60&resolution=1"):
        r = requests.get(f"{url}?{query}", timeout=10)
        assert r.status_code == 400, (query, r.text)
        assert "at most one value" in r.json()["error"]
    # an empty value still counts as left out
    r = requests.get(f"{url}?start=&end=&resolution=", timeout=10)
    assert r.status_code == 200 and r.json()["start"] is None and r.json()["samples"]
