"""The master config file and ``rpiaas master``'s errors: one ``error:`` line with file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.cli import main
from rpiaas.master import load_master_config, sample_from_info
from rpiaas.master.config import parse_host_port
from rpiaas.master.registry import Registry

CLUSTER = ("cluster:\n"
           "  clusters:\n"
           "    - {domain: c1.test, prefix: 10.0.0, count: 2, type: rpi4b}\n")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "master.yaml"
    path.write_text(text)
    return path


def test_defaults_and_overrides(tmp_path: Path) -> None:
    config = load_master_config(_write(tmp_path, CLUSTER + 'agents:\n  node2.c1.test: "127.0.0.1:18082"\n'))
    assert config.poll_interval_s == 10.0 and config.timeout_s == 3.0
    assert config.run_hold_limit_s == 600.0
    assert load_master_config(_write(tmp_path, CLUSTER + "run_hold_limit_s: 30\n")).run_hold_limit_s == 30.0
    assert config.listen == ("0.0.0.0", 8080) and config.store == str(tmp_path / "master-history.db")
    urls = {e.name: e.base_url for e in Registry(config)}
    assert urls == {"node1.c1.test": "http://10.0.0.1:8081", "node2.c1.test": "http://127.0.0.1:18082"}


def test_cluster_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(CLUSTER.split("\n", 1)[1].replace("  ", "", 1)
                                           .replace("\n  ", "\n"))
    config = load_master_config(_write(tmp_path, "cluster: cluster.yaml\nstore: ':memory:'\n"))
    assert [n.name for n in config.cluster.nodes] == ["node1.c1.test", "node2.c1.test"]
    assert config.store == ":memory:"


@pytest.mark.parametrize(("extra", "where"), [
    ("poll_interval_s: -1\n", ":4: poll_interval_s: expected a positive number"),
    ("agents:\n  nope.c1.test: 127.0.0.1:1\n", ":5: agents.nope.c1.test: no such node"),
    ("agents:\n  node1.c1.test: localhost\n", ":5: agents.node1.c1.test: expected host:port"),
    ("listen: 'x:99999'\n", ":4: listen: expected host:port"),
    ("pol_interval_s: 1\n", ":4: pol_interval_s: unknown key"),
    ("store: redis://x/0\n", ":4: store: no history store for scheme 'redis'"),
    ("run_hold_limit_s: 0\n", ":4: run_hold_limit_s: expected a positive number"),
])
def test_cli_bad_config_exits_2_with_file_line_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   extra: str, where: str) -> None:
    path = _write(tmp_path, CLUSTER + extra)
    assert main(["master", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}{where}"), err


def test_cli_missing_file_and_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["master", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["master", str(_write(tmp_path, "poll_interval_s: 1\n"))]) == 2
    assert "missing key 'cluster'" in capsys.readouterr().err


def test_cli_bad_store_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["master", str(_write(tmp_path, CLUSTER)), "--store", "ftp://x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --store: no history store for scheme 'ftp'") and err.count("\n") == 1


def test_parse_host_port() -> None:
    assert parse_host_port("127.0.0.1:80") == ("127.0.0.1", 80)
    assert parse_host_port("8080", default_host="0.0.0.0") == ("0.0.0.0", 8080)
    assert parse_host_port("[::1]:81") == ("::1", 81)
    with pytest.raises(ValueError):
        parse_host_port("host:0")


def test_sample_from_info_handles_missing_readings() -> None:
    info = {"cpu": {"cores": 2, "usage_ratio": None, "usage_ratio_mean": None, "temperature_c": None},
            "load": {"1m": 0.5, "5m": 0.1, "15m": 0.0},
            "memory": {"total_bytes": 4 << 30, "available_bytes": 3 << 30, "used_bytes": 1 << 30,
                       "used_ratio": 0.25},
            "disk": None}
    s = sample_from_info("n1", 100.0, info)
    assert (s.cpu_util, s.mem_used_mb, s.mem_total_mb, s.load1, s.disk_used_ratio) == (
        0.0, 1024.0, 4096.0, 0.5, 0.0)
    assert s.temperature_c is None and s.cpu_per_core is None
    info["cpu"] = {"usage_ratio": [0.2, 0.4], "usage_ratio_mean": 0.3, "temperature_c": 51.2}
    s = sample_from_info("n1", 100.0, info)
    assert s.cpu_per_core == (0.2, 0.4) and s.cpu_util == 0.3 and s.temperature_c == 51.2


def _testbed_blocks(lang: str) -> list[str]:
    text = (Path(__file__).parents[2] / "docs" / "testbed.md").read_text()
    master = text[text.index("## The master"):]
    return [b.split("```", 1)[0] for b in master.split(f"```{lang}\n")[1:]]


def test_the_documented_master_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RPIAAS_MASTER_TOKEN", raising=False)
    (tmp_path / "cluster.yaml").write_text(
        "clusters:\n  - {domain: cluster1.rpiaas.test, prefix: 10.0.1, count: 3, type: rpi4b}\n")
    (tmp_path / "master-token").write_text("s3cret-token\n")
    (tmp_path / "node-secret").write_text("nodes-secret\n")
    config = load_master_config(_write(tmp_path, _testbed_blocks("yaml")[0]))
    assert config.token == "s3cret-token" and config.node_secret == "nodes-secret"
    assert config.runs_dir == str(tmp_path / "runs") and config.retention is not None
    assert (config.retention.raw_s, config.retention.keep_s) == (86400, 2592000)
    assert Registry(config).get("node1.cluster1.rpiaas.test") is not None


def test_the_documented_error_is_the_real_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = _testbed_blocks("text")[0].strip()
    text = CLUSTER + "\n" * 4 + "retention:\n  keep_s: 60\n"  # keep_s on line 9
    path = _write(tmp_path, text)
    assert main(["master", str(path)]) == 2
    assert capsys.readouterr().err.strip() == shown.replace("master.yaml", str(path))


def test_a_bad_original_config_json_stops_the_master(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The cluster file's own errors name that file, its line and key."""
    cluster = tmp_path / "config.json"
    cluster.write_text('{\n\t"interface": "eth0",\n\t"clusters": [{\n\t\t"domain": "c1.test",\n'
                       '\t\t"prefix": "10.0.1",\n\t\t"nodes": [\n'
                       '\t\t\t{"type": "rpi4", "hostname": "a", "suffix": 1, "hwaddr": "dc:a6:32:00:00:01"},\n'
                       '\t\t\t{"type": "rpi4", "hostname": "b", "suffix": 2, "hwaddr": "DC:A6:32:00:00:01"}\n'
                       "\t\t]\n\t}]\n}\n")
    assert main(["master", str(_write(tmp_path, "cluster: config.json\n"))]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {cluster}:8: clusters[0].nodes[1].hwaddr: duplicate MAC address "
                   "dc:a6:32:00:00:01 (first at line 7)\n")
