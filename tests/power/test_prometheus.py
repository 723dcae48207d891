"""The ``prometheus`` meter against a real Prometheus server scraping a scripted exporter.

The exporter is a small HTTP server in this test serving two nodes' power;
Prometheus (Debian's ``prometheus``) scrapes it every 0.5 s on loopback, and
the meter queries Prometheus.  Skips, with the reason, where the
``prometheus`` program is missing, and fails instead under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from rpiaas.model import PROFILES, MeterSpec, Node
from rpiaas.power import PowerError, meter_for
from rpiaas.power.meters.prometheus import sample

PROMETHEUS = shutil.which("prometheus")
if PROMETHEUS is None and os.environ.get("CI") == "true":
    raise RuntimeError("the prometheus meter must be tested in CI: no 'prometheus' program (Debian package "
                       "prometheus)")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="no 'prometheus' program (Debian package "
                                                                 "prometheus)")

EXPOSITION = """\
# HELP lab_power_watts Power drawn by a node, as the lab's PDU reports it.
# TYPE lab_power_watts gauge
lab_power_watts{node="pi1"} 3.25
lab_power_watts{node="pi2"} 5
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Exporter(BaseHTTPRequestHandler):
    scrapes: ClassVar[list[float]] = []

    def do_GET(self) -> None:
        Exporter.scrapes.append(time.time())
        body = EXPOSITION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Prometheus that has scraped the exporter at least once."""
    assert PROMETHEUS is not None
    directory = tmp_path_factory.mktemp("prometheus")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    config = directory / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms"},
        "scrape_configs": [{"job_name": "lab", "static_configs": [
            {"targets": [f"127.0.0.1:{exporter.server_address[1]}"]}]}]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=directory)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError, ValueError):
                query = urllib.parse.urlencode({"query": 'lab_power_watts{node="pi1"}'})
                with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=2) as r:
                    if json.load(r)["data"]["result"]:
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not scrape the exporter:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        exporter.shutdown()
        exporter.server_close()


def read(url: str, query: str, **extra: Any) -> Any:
    meter = meter_for(Node(0, "pi1", "lab.test", PROFILES["rpi4b"],
                           meter=MeterSpec("prometheus", (("url", url), ("query", query), *extra.items()))))
    assert meter is not None
    return asyncio.run(meter.read())


@pytest.mark.slow
@pytest.mark.integration
@needs_prometheus
def test_one_series_gives_a_reading_at_the_samples_time(prometheus: str) -> None:
    reading = read(prometheus, 'lab_power_watts{node="pi1"}')
    assert reading.watts == 3.25
    assert abs(reading.time_s - time.time()) < 5  # the evaluation time Prometheus gives
    assert read(prometheus, "sum(lab_power_watts)").watts == 8.25
    assert read(prometheus, 'lab_power_watts{node="pi2"} * 1000 / 1000').watts == 5.0
    assert read(prometheus, "scalar(sum(lab_power_watts))").watts == 8.25


@pytest.mark.slow
@pytest.mark.integration
@needs_prometheus
@pytest.mark.parametrize(("query", "why"), [
    ("lab_power_watts", "the query gives 2 series; it must give exactly one"),
    ('lab_power_watts{node="pi9"}', "the query gives 0 series; it must give exactly one"),
    ("lab_power_watts{", "the query failed: "),
    ("lab_power_watts[1m]", "the query gives a matrix; it must give one sample"),
    ('-lab_power_watts{node="pi1"}', "the sample is -3.25, not a power in W"),
])
def test_a_query_that_gives_no_single_power_is_one_line(prometheus: str, query: str, why: str) -> None:
    with pytest.raises(PowerError) as e:
        read(prometheus, query)
    message = str(e.value)
    assert message.startswith(f"pi1.lab.test: prometheus read: {why}")
    assert "\n" not in message


def test_no_server_there() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PowerError) as e:
        read(url, "up")
    assert str(e.value).startswith(f"pi1.lab.test: prometheus read: {url}: ClientConnectorError")


def test_a_server_that_answers_late() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()  # accepts the connection, never answers
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(PowerError) as e:
            read(url, "up", timeout_s=0.3)
        assert str(e.value) == f"pi1.lab.test: prometheus read: no answer from {url} within 0.3 s"
        assert time.monotonic() - started < 2
    finally:
        server.close()


def test_the_answer_format() -> None:
    assert sample({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1765000000.5, "2.5"]}]}}) == (1765000000.5, 2.5)
    with pytest.raises(ValueError, match="is NaN, not a power"):
        sample({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "NaN"]}})
