"""Bad input through the rpiaas command: one located line, exit 2, nothing written."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE = Path("/work/shared/reference/rpiaas-config.example.json")


def rpiaas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


# ---------------------------------------------------------------- bad input
SCENARIO = """\
name: exp
seed: 1
cluster:
  interface: eth0
  clusters:
    - domain: a.test
      prefix: 10.0.1
      nodes:
        - {hostname: n1, type: rpi4b, suffix: 1, hwaddr: "dc:a6:32:00:00:01", serial: 1a2b3c4d}
        - {hostname: n2, type: rpi4b, suffix: 2, hwaddr: "dc:a6:32:00:00:02"}
workload:
  generator:
    count: 20
    arrival: {rate_per_s: 0.5}
    cores: 2
    mem_mb: 512
    work_core_s: {dist: exponential, mean: 30}
policy: best_fit
"""
# lines: 2 seed, 4 interface, 7 prefix, 9 n1, 10 n2, 13 count, 14 arrival, 15 cores, 16 mem_mb,
# 17 work_core_s, 18 policy
G = "workload.generator"
N2 = "cluster.clusters[0].nodes[1]"
BAD = [
    # (old, new, line, key, message start)
    ("seed: 1", "seeed: 1", 2, "seeed",
     "unknown key (did you mean 'seed'?) (expected one of: name, description, seed,"),
    ("cores: 2", "cores: -1", 15, f"{G}.cores", "expected a positive integer, got -1"),
    ("cores: 2", "cores: two", 15, f"{G}.cores", "expected a number or a mapping with dist"),
    ("count: 20", "count: 0", 13, f"{G}.count", "expected a positive integer, got 0"),
    ("count: 20", "count: [20]", 13, f"{G}.count", "expected a positive integer, got a list"),
    ("{rate_per_s: 0.5}", "{rate_per_s: -0.5}", 14, f"{G}.arrival.rate_per_s", "expected a positive number, got -0.5"),
    ("mean: 30}", "mean: 0}", 17, f"{G}.work_core_s.mean", "expected a positive number, got 0"),
    ("cores: 2", "cores: 6", 15, f"{G}.cores", "tasks of up to 6 cores fit no node type"),
    ("mem_mb: 512", "mem_mb: 8192", 16, f"{G}.mem_mb", "tasks of up to 8192 MB fit no node type"),
    ("policy: best_fit", "policy: bestfit", 18, "policy", "unknown policy 'bestfit'"),
    ("policy: best_fit", "policy: {name: consolidate, params: {min_on: many}}", 18,
     "policy.params.min_on", "expected int, got 'many'"),
    ("seed: 1", "seed: 1\n  oops: [", 3, "", "not valid YAML"),
    ("seed: 1", "seed: 1\n\tx: 1", 3, "", "not valid YAML: found character '\\t'"),
    ("n2, type: rpi4b", "n1, type: rpi4b", 10, f"{N2}.hostname", "duplicate name n1.a.test (first at line 9)"),
    ('"dc:a6:32:00:00:02"', '"dc:a6:32:00:00:01"', 10, f"{N2}.hwaddr",
     "duplicate MAC address dc:a6:32:00:00:01 (first at line 9)"),
    ("suffix: 2,", "suffix: 1,", 10, f"{N2}.suffix", "duplicate address 10.0.1.1 (first at line 9)"),
    ('"dc:a6:32:00:00:02"', '"dc:a6:32:00:02"', 10, f"{N2}.hwaddr", "expected a MAC address"),
    ("prefix: 10.0.1", "prefix: 10.0.1.7", 7, "cluster.clusters[0].prefix", "expected 1 to 3 octets"),
    ("prefix: 10.0.1", "prefix: 300.0.1", 7, "cluster.clusters[0].prefix", "expected 1 to 3 octets"),
    ("suffix: 2,", "address: 10.9.9.2,", 10, f"{N2}.address", "10.9.9.2 is outside the cluster's prefix 10.0.1"),
    ("serial: 1a2b3c4d", "serial: 1a2b3c4", 9, "cluster.clusters[0].nodes[0].serial",
     "expected 8 hex digits, got '1a2b3c4'"),
    ("serial: 1a2b3c4d", "serial: 1a2b3c4x", 9, "cluster.clusters[0].nodes[0].serial", "expected 8 hex digits"),
    ("interface: eth0", "interface: eth 0", 4, "cluster.interface", "not a network interface name: 'eth 0'"),
    ("n2, type: rpi4b", "n2, kind: rpi4b", 10, f"{N2}.kind", "unknown key (expected one of: hostname,"),
    ("  interface: eth0", "  interfaces: eth0", 4, "cluster.interfaces", "unknown key"),
]


def _assert_refused(r: subprocess.CompletedProcess[str], where: str, message: str, out: Path) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {where}{message}"), (lines[0], f"error: {where}{message}")
    assert "Traceback" not in r.stderr + r.stdout
    assert not out.exists()
    assert list(out.parent.glob(f".{out.name}.partial-*")) == []
    assert not (out.parent / "runs").exists()


@pytest.mark.parametrize(("old", "new", "line", "key", "message"), BAD,
                         ids=[f"{b[3] or 'yaml'}:{b[4][:25]}" for b in BAD])
def test_bad_input_is_refused_with_one_located_line(tmp_path: Path, old: str, new: str, line: int,
                                                    key: str, message: str) -> None:
    assert old in SCENARIO
    (tmp_path / "bad.yaml").write_text(SCENARIO.replace(old, new, 1))
    where = f"bad.yaml:{line}: " + (f"{key}: " if key else "")
    out = tmp_path / "out"
    _assert_refused(rpiaas(tmp_path, "run", "bad.yaml", "--out", str(out)), where, message, out)
    _assert_refused(rpiaas(tmp_path, "validate", "bad.yaml"), where, message, out)


def test_the_base_of_the_bad_table_runs(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(SCENARIO)
    r = rpiaas(tmp_path, "run", "ok.yaml", "-q", "--out", "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "run.json").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--set", f"{G}.count=-5"], f"error: --set: {G}.count: expected a positive integer, got -5"),
    (["--set", f"{G}.cors=1"], f"error: --set: {G}.cors: unknown key"),
    (["--set", "novalue"], "error: --set: expected key.path=value, got 'novalue'"),
    (["--set", "cluster.clusters.4.count=1"], "error: --set: cannot set cluster.clusters.4.count"),
    (["--seed", "-1"], "error: --seed: seed: expected a non-negative integer, got -1"),
    (["--policy", "nope"], "error: --policy: policy.name: unknown policy 'nope' (known: "),
    (["--policy", "consolidate", "--set", "policy.params.min_on=-1"],
     "error: --set: policy.params.min_on: min_on must be >= 0"),
    (["--set", "initial_power=off"], "error: --set: initial_power: every node starts off and policy 'best_fit'"),
])
def test_bad_overrides_are_refused(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "ok.yaml").write_text(SCENARIO)
    out = tmp_path / "out"
    _assert_refused(rpiaas(tmp_path, "run", "ok.yaml", "--out", str(out), *args),
                    expected.removeprefix("error: "), "", out)


def test_a_missing_scenario_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _assert_refused(rpiaas(tmp_path, "run", "nope.yaml", "--out", str(out)), "nope.yaml: no such file", "", out)


def test_an_error_in_the_original_config_json_names_that_file(tmp_path: Path) -> None:
    config = REFERENCE.read_text().replace('"hwaddr": "00:00:00:00:00:00"', '"hwaddr": "00:00:00:00:00"', 1)
    (tmp_path / "config.json").write_text(config)
    line = config.splitlines().index('\t\t\t"hwaddr": "00:00:00:00:00"') + 1
    cut = SCENARIO.index("cluster:")
    rest = SCENARIO[SCENARIO.index("workload:"):]
    (tmp_path / "s.yaml").write_text(SCENARIO[:cut] + "cluster: config.json\n" + rest.replace("cores: 2", "cores: 1"))
    out = tmp_path / "out"
    _assert_refused(rpiaas(tmp_path, "run", "s.yaml", "--out", str(out)),
                    f"config.json:{line}: clusters[0].nodes[0].hwaddr: ", "expected a MAC address", out)
    shutil.copy(REFERENCE, tmp_path / "config.json")  # the original as it is runs
    r = rpiaas(tmp_path, "run", "s.yaml", "-q", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with open(out / "tasks.csv", newline="") as f:
        nodes = {row["node"] for row in csv.DictReader(f)}
    assert nodes <= {"node1.cluster1.rpiaas.test", "node2.cluster1.rpiaas.test",
                     "node1.cluster2.rpiaas.test", "node2.cluster2.rpiaas.test"}
