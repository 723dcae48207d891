"""The master and its agents against an attacker, as real processes on loopback.

One local testbed (``start_local_testbed``: a master and two agents) serves
every test; each tries what an attacker on the lab network would, and checks
that it is refused as ``docs/security.md`` says: the runs API reads no file on
the master, one node cannot speak for another, a boot report needs the node's
token and its address, no credential reaches a log, and bodies nested too deep
answer 400 in the documented JSON format.
"""

from __future__ import annotations

import http.client
import json
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas.testbed.local import LocalTestbed, start_local_testbed

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NODE1, NODE2 = "node1.local.rpiaas.test", "node2.local.rpiaas.test"
ADDRESS1 = "127.0.1.1"  # node1's address in the testbed's cluster


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    with start_local_testbed(tmp_path_factory.mktemp("security"), 2, poll_interval_s=0.5,
                             master_port=0) as bed:
        yield bed


def _request(url: str, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None,
             source: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client (from ``source`` address if given): status, headers, body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _post(url: str, path: str, doc: Any, token: str | None = None,
          source: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    status, _, body = _request(url, "POST", path, json.dumps(doc).encode(), headers, source)
    return status, json.loads(body)


def _logs(tb: LocalTestbed) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((tb.dir / "logs").iterdir()))


def _credentials(tb: LocalTestbed) -> list[str]:
    return [tb.master_token, tb.node_secret_file.read_text().strip(),
            *(tb.node_token(name) for name in tb.agents)]


# ---------------------------------------------------------------- 1. no file of the master
@pytest.mark.parametrize("where", ["cluster", "trace"])
@pytest.mark.parametrize("target", ["../../node-secret", "../node-secret", "/etc/passwd",
                                    "master-token", "tokens/node1.local.rpiaas.test.token"])
def test_a_scenario_naming_a_file_on_the_master_is_refused_unread(
        tb: LocalTestbed, where: str, target: str) -> None:
    cluster: Any = target if where == "cluster" else {
        "clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2,
                      "type": "rpi4b"}]}
    workload: Any = {"trace": {"path": target}} if where == "trace" else {"tasks": []}
    scenario = {"name": "probe", "cluster": cluster, "workload": workload, "policy": "best_fit"}
    status, doc = _post(tb.master_url, "/api/v1/runs", {"scenario": scenario}, tb.master_token)
    assert status == 400, doc
    message = doc["error"]
    assert set(doc) == {"error"}
    assert message.startswith(f"scenario.{'cluster' if where == 'cluster' else 'workload.trace'}:")
    assert "reads no" in message
    passwd = Path("/etc/passwd").read_text().splitlines()
    assert not any(line and line in message for line in passwd)
    assert not any(secret in message for secret in _credentials(tb))
    # nothing was started, no run directory is left
    assert json.loads(_request(tb.master_url, "GET", "/api/v1/runs")[2])["runs"] == []


def test_an_error_in_the_sent_scenario_still_names_its_key(tb: LocalTestbed) -> None:
    scenario = {"name": "probe", "workload": {"tasks": []}, "policy": "best_fit",
                "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1",
                                          "count": "two", "type": "rpi4b"}]}}
    status, doc = _post(tb.master_url, "/api/v1/runs", {"scenario": scenario}, tb.master_token)
    assert status == 400 and doc["error"].startswith("scenario: cluster.clusters[0].count:"), doc


# ---------------------------------------------------------------- 2. one node, one voice
def _wait(check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_node_cannot_end_another_nodes_task(tb: LocalTestbed) -> None:
    cluster = {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2,
                             "type": "rpi4b"}]}
    # one long task: best_fit puts it on node1
    scenario = {"name": "forge", "seed": 1, "cluster": cluster, "policy": "first_fit",
                "workload": {"tasks": [{"id": 1, "arrival_s": 0, "cores": 1, "mem_mb": 16,
                                        "work_core_s": 120}]}}
    status, run = _post(tb.master_url, "/api/v1/runs", {"scenario": scenario}, tb.master_token)
    assert status == 201, run

    def running_on_node1() -> list[dict[str, Any]]:
        _, _, body = _request(tb.agents[NODE1].url, "GET", "/tasks",
                              headers={"Authorization": f"Bearer {tb.node_token(NODE1)}"})
        return [t for t in json.loads(body)["tasks"] if t["state"] == "running"]

    try:
        (task,) = _wait(running_on_node1)
        forged = {**task, "state": "completed", "exit_status": 0, "ended_s": time.time()}
        # node2's own token: a node's token, but not the node that runs the task
        status, doc = _post(tb.master_url, "/api/v1/task-ended", forged, tb.node_token(NODE2))
        assert (status, doc) == (403, {"error": "id: not a task of the reporting node"})
        # the master's token, a made-up one, none: not a node's token at all
        for token in (tb.master_token, "0" * 64, None):
            status, doc = _post(tb.master_url, "/api/v1/task-ended", forged, token)
            assert status == 401 and set(doc) == {"error"}, (token, doc)
        # node2's token opens node2's agent only
        status, _, _ = _request(tb.agents[NODE1].url, "DELETE", f"/tasks/{task['id']}",
                                headers={"Authorization": f"Bearer {tb.node_token(NODE2)}"})
        assert status == 401
        time.sleep(1.0)  # the master would have journalled a taken report by now
        state = json.loads(_request(tb.master_url, "GET", f"/api/v1/runs/{run['id']}")[2])
        assert (state["state"], state["running"], state["ended"]) == ("running", 1, 0), state
        journal = (tb.dir / "runs" / run["id"] / "journal.jsonl").read_text()
        assert '"finish"' not in journal and '"fail"' not in journal
        assert [t["id"] for t in running_on_node1()] == [task["id"]]
        assert "pushed the end of task" in _logs(tb)  # the refusal is logged, with the node
    finally:
        _request(tb.master_url, "DELETE", f"/api/v1/runs/{run['id']}",
                 headers={"Authorization": f"Bearer {tb.master_token}"})


# ---------------------------------------------------------------- 3. boot reports
def _can_bind(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def test_a_boot_report_needs_the_nodes_token_and_its_address(tb: LocalTestbed) -> None:
    if not _can_bind(ADDRESS1):
        pytest.skip(f"cannot bind {ADDRESS1} on this machine")
    path = f"/api/v1/nodes/{NODE1}/booted"
    # (the agent's own report at its start, from its node's address, may be there already)
    before = json.loads(_request(tb.master_url, "GET", f"/api/v1/nodes/{NODE1}")[2])["last_boot"]
    assert before is None or before["boot_s"] < 60  # its agent's start, not the host's uptime
    # a local process on node1's address: no token, another node's, the master's
    for token in (None, tb.node_token(NODE2), tb.master_token, "f" * 64):
        status, doc = _post(tb.master_url, path, {"uptime_s": 0.01}, token, source=ADDRESS1)
        assert status == 403 and set(doc) == {"error"}, (token, doc)
    # node1's own token from an address that is not node1's
    status, doc = _post(tb.master_url, path, {"uptime_s": 0.02}, tb.node_token(NODE1),
                        source="127.0.0.1")
    assert status == 403, doc
    node = json.loads(_request(tb.master_url, "GET", f"/api/v1/nodes/{NODE1}")[2])
    assert node["last_boot"] == before  # nothing reached calibration
    # the node itself: its token, from its address
    status, doc = _post(tb.master_url, path, {"uptime_s": 3.5}, tb.node_token(NODE1),
                        source=ADDRESS1)
    assert status == 200 and doc["via"] == "token" and doc["boot_s"] == 3.5, doc
    node = json.loads(_request(tb.master_url, "GET", f"/api/v1/nodes/{NODE1}")[2])
    assert node["last_boot"]["boot_s"] == 3.5


# ---------------------------------------------------------------- 4. no credential in a log
def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_no_credential_reaches_a_log_and_the_logs_are_private(tb: LocalTestbed) -> None:
    sent = 0
    for url, token, path in ((tb.master_url, tb.master_token, "/api/v1/history/purge"),
                             (tb.master_url, tb.node_token(NODE1), "/api/v1/task-ended"),
                             (tb.agents[NODE1].url, tb.node_token(NODE1), "/tasks")):
        t = token.encode()
        for header in (b"Authorization: Bearer " + t + b"\x01x", b"Authorization: Bearer\x00 " + t,
                       b"Authorization : Bearer " + t, b"Authorization: Bearer " + t + b"\n",
                       b"X-Token\x7f: " + t, b"Authorization: Basic " + t + b"\x02",
                       b"Authorization: Bearer " + t[:-1] + b"!"):  # well-formed, wrong
            _raw(url, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + header
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            sent += 1
    time.sleep(0.5)  # the processes write their logs
    logs = _logs(tb)
    assert "Invalid header" in logs or "bad request" in logs  # the requests were logged
    assert "[redacted]" in logs
    for secret in _credentials(tb):
        assert secret not in logs
    for log in (tb.dir / "logs").iterdir():
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
    assert stat.S_IMODE((tb.dir / "logs").stat().st_mode) == 0o700
    assert sent == 21


# ---------------------------------------------------------------- 5. bounded bodies
@pytest.mark.parametrize("depth", [33, 10_000, 30_000])  # 30 000: 60 KB, under the agent's limit
def test_deeply_nested_bodies_answer_400_in_the_documented_format(tb: LocalTestbed,
                                                                  depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    body = b'{"a": ' + nested + b"}"
    master = [("/api/v1/history/purge", tb.master_token), ("/api/v1/runs", tb.master_token),
              (f"/api/v1/nodes/{NODE1}/poll", tb.master_token),
              (f"/api/v1/nodes/{NODE1}/booting", tb.master_token),
              ("/api/v1/history/compact", tb.master_token),
              ("/api/v1/task-ended", tb.node_token(NODE1)),
              (f"/api/v1/nodes/{NODE1}/booted", tb.node_token(NODE1))]
    for path, token in master:
        status, headers, answer = _request(
            tb.master_url, "POST", path, body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            source=ADDRESS1 if path.endswith("/booted") and _can_bind(ADDRESS1) else None)
        doc = json.loads(answer)
        assert headers["Content-Type"].startswith("application/json"), (path, answer[:200])
        if path.endswith("/booted") and not _can_bind(ADDRESS1):
            assert status == 403
            continue
        assert status == 400 and set(doc) == {"error"}, (path, status, doc)
        assert "nested more than 32 deep" in doc["error"], doc
    status, headers, answer = _request(
        tb.agents[NODE1].url, "POST", "/tasks", body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {tb.node_token(NODE1)}"})
    doc = json.loads(answer)
    assert (status, set(doc)) == (400, {"error", "status"}) and doc["status"] == 400, doc
    assert "nested more than 32 deep" in doc["error"]
    assert "Traceback" not in _logs(tb)
