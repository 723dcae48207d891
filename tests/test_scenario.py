"""Scenario files: parsing, defaults, overrides, located errors, the docs' examples,
and every example scenario run end to end."""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpiaas.inputs.cluster import load_cluster
from rpiaas.inputs.source import InputError, Source, load
from rpiaas.model import PowerState
from rpiaas.policy.base import Policy
from rpiaas.scenario import Scenario, load_scenario, parse_overrides, parse_scenario
from rpiaas.sim import simulate
from rpiaas.sim.engine import rng_streams
from rpiaas.workload import Generator

from .helpers import scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
DOC = ROOT / "docs" / "scenario.md"
REFERENCE = Path("/work/shared/reference/rpiaas-config.example.json")

BASE = """\
name: base
seed: 5
cluster:
  clusters:
    - {domain: a.test, prefix: 10.0.1, count: 2, type: rpi4b}
workload:
  generator:
    count: 20
    arrival: {rate_per_s: 0.5}
    cores: {dist: uniform, low: 1, high: 2}
    mem_mb: 256
    work_core_s: {dist: exponential, mean: 20}
policy: best_fit
"""
# lines: 1 name, 2 seed, 3 cluster, 5 the cluster entry, 6 workload, 7 generator, 13 policy


def installed(monkeypatch: pytest.MonkeyPatch, cls: type[Policy]) -> None:
    """Make ``cls`` a policy that scenarios find by its name, as if a package installed it."""
    from rpiaas import scenario as scenario_module
    from rpiaas.policy.plugins import PolicyInfo, get_policy

    monkeypatch.setattr(scenario_module, "get_policy", lambda name, broken=None:
                        PolicyInfo(name, cls, "tests") if name == cls.NAME else get_policy(name, broken))


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


# ---------------------------------------------------------------- parsing and defaults
def test_the_quickstart() -> None:
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    assert (sc.name, sc.seed, sc.sample_interval_s, sc.horizon_s) == ("quickstart", 42, 30.0, None)
    assert len(sc.cluster.nodes) == 12 and len(sc.cluster.clusters) == 2
    assert isinstance(sc.workload, Generator) and sc.workload.count == 2000
    assert sc.policy.name == "best_fit" and sc.queue is None
    assert [type(p).NAME for p in sc.policies()] == ["best_fit"]


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    text = BASE.replace("name: base\nseed: 5\n", "").replace("policy: best_fit", "policy: consolidate")
    sc = load_scenario(write(tmp_path, text, "my-exp.yaml"))
    assert (sc.name, sc.seed, sc.horizon_s, sc.sample_interval_s, sc.retries) == ("my-exp", 0, None, 60.0, 0)
    assert sc.initial_power is PowerState.ON and sc.description == ""
    assert sc.policy.params == {"idle_timeout_s": 300.0, "min_on": 1}
    # run.json records the scenario with the defaults filled in
    assert {k: sc.data[k] for k in ("name", "seed", "horizon_s", "sample_interval_s", "retries",
                                    "initial_power", "queue")} == {
        "name": "my-exp", "seed": 0, "horizon_s": None, "sample_interval_s": 60.0, "retries": 0,
        "initial_power": "on", "queue": None}
    assert sc.data["policy"] == {"name": "consolidate", "params": {"idle_timeout_s": 300.0, "min_on": 1}}
    json.dumps(sc.data)  # it must be writable as JSON


def test_policy_and_queue_with_parameters(tmp_path: Path) -> None:
    text = BASE.replace("policy: best_fit", "policy: {name: consolidate, params: {min_on: 2}}\n"
                                           "queue: {name: sjf, params: {skip_blocked: true}}")
    sc = load_scenario(write(tmp_path, text))
    assert sc.policy.params == {"idle_timeout_s": 300.0, "min_on": 2}
    assert sc.queue is not None and sc.queue.params == {"skip_blocked": True}
    assert [type(p).NAME for p in sc.policies()] == ["sjf", "consolidate"]  # main policy last


def test_initial_power_off_with_a_power_policy(tmp_path: Path) -> None:
    text = BASE.replace("policy: best_fit", "policy: consolidate\ninitial_power: off")
    sc = load_scenario(write(tmp_path, text))
    assert sc.initial_power is PowerState.OFF and sc.data["initial_power"] == "off"
    summary, _ = simulate(sc)
    assert summary["completed"] == 20


def test_run_json_keeps_values_read_as_text(tmp_path: Path) -> None:
    text = BASE.replace("prefix: 10.0.1, count: 2, type: rpi4b}",
                        "prefix: 10.10, nodes: [{hostname: n1, type: rpi4b, suffix: 0.1}]}")
    text = text.replace("name: base", "name: base\ndescription: 2024-05-01")
    sc = load_scenario(write(tmp_path, text))
    assert sc.cluster.nodes[0].address == "10.10.0.1"
    assert sc.data["cluster"]["clusters"][0]["prefix"] == "10.10"  # not 10.1, as YAML reads it
    assert sc.description == "2024-05-01"
    json.dumps(sc.data)


# ---------------------------------------------------------------- cluster files
def test_a_scenario_can_name_a_cluster_file(tmp_path: Path) -> None:
    (tmp_path / "hw").mkdir()
    shutil.copy(REFERENCE, tmp_path / "hw" / "config.json")
    text = BASE.replace("cluster:\n  clusters:\n    - {domain: a.test, prefix: 10.0.1, count: 2, type: rpi4b}\n",
                        "cluster: hw/config.json\n")
    sc = load_scenario(write(tmp_path, text))
    assert [n.address for n in sc.cluster.nodes] == ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"]
    assert sc.cluster == load_cluster(REFERENCE)
    assert sc.data["cluster"] == "hw/config.json"


def test_a_missing_cluster_file_is_reported_at_the_scenario_key(tmp_path: Path) -> None:
    text = BASE.replace("cluster:\n  clusters:\n    - {domain: a.test, prefix: 10.0.1, count: 2, type: rpi4b}\n",
                        "cluster: nowhere.json\n")
    f = write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    assert str(exc.value) == f"{f}:3: cluster: no such cluster file: {str(tmp_path / 'nowhere.json')!r}"


def test_an_error_inside_a_cluster_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "clusters:\n  - {count: 2, type: rpi4b, prefix: 10.0.1}\n"
                    "  - {count: 1, type: rpi5, prefix: 10.0.2}\n", "c.yaml")
    text = BASE.replace("cluster:\n  clusters:\n    - {domain: a.test, prefix: 10.0.1, count: 2, type: rpi4b}\n",
                        "cluster: c.yaml\n")
    with pytest.raises(InputError) as exc:
        load_scenario(write(tmp_path, text))
    assert str(exc.value).startswith(f"{tmp_path / 'c.yaml'}:3: clusters[1].count: duplicate name node1")


# ---------------------------------------------------------------- overrides
def test_parse_overrides_reads_yaml_values_and_keeps_their_text() -> None:
    pairs = parse_overrides(["a.b=3", "c=hello", "d={x: 1}", "e=", "f=10.10", "g=2024-01-01", "h=a: b: c"])
    assert [tuple(p) for p in pairs] == [("a.b", 3), ("c", "hello"), ("d", {"x": 1}), ("e", ""),
                                         ("f", 10.1), ("g", "2024-01-01"), ("h", "a: b: c")]
    assert getattr(pairs[4], "raw", None) == "10.10"
    with pytest.raises(InputError, match=re.escape("--set: expected key.path=value, got 'novalue'")):
        parse_overrides(["novalue"])


def test_set_seed_and_policy_overrides(tmp_path: Path) -> None:
    f = write(tmp_path, BASE)
    sc = load_scenario(f, parse_overrides(["workload.generator.count=7", "horizon_s=100",
                                           "cluster.clusters.0.count=3", "queue=easy_backfill"]),
                       seed=9, policy="first_fit")
    assert (sc.workload.count, sc.horizon_s, len(sc.cluster.nodes), sc.seed) == (7, 100.0, 3, 9)
    assert sc.policy.name == "first_fit" and sc.queue is not None and sc.queue.name == "easy_backfill"


def test_policy_override_then_its_parameters(tmp_path: Path) -> None:
    f = write(tmp_path, BASE.replace("policy: best_fit", "policy: {name: consolidate, params: {min_on: 2}}"))
    sc = load_scenario(f, parse_overrides(["policy.params.idle_timeout_s=60"]), policy="consolidate")
    assert sc.policy.params == {"idle_timeout_s": 60, "min_on": 2}  # same policy: params kept
    sc = load_scenario(f, policy="best_fit")
    assert sc.policy.name == "best_fit" and sc.policy.params == {}  # another policy: params dropped
    f2 = write(tmp_path, BASE, "plain.yaml")
    sc = load_scenario(f2, parse_overrides(["policy.params.min_on=3"]), policy="consolidate")
    assert sc.policy.params == {"idle_timeout_s": 300.0, "min_on": 3}


def test_set_on_a_policy_given_by_name(tmp_path: Path) -> None:
    f = write(tmp_path, BASE.replace("policy: best_fit", "policy: consolidate"))
    sc = load_scenario(f, parse_overrides(["policy.params.min_on=0"]))
    assert sc.policy.name == "consolidate" and sc.policy.params["min_on"] == 0


def test_set_prefix_keeps_its_text(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, BASE), parse_overrides(["cluster.clusters.0.prefix=10.10.10"]))
    assert sc.cluster.nodes[0].address == "10.10.10.1"
    assert sc.data["cluster"]["clusters"][0]["prefix"] == "10.10.10"
    with pytest.raises(InputError, match=r"10\.10\.1 is not an IPv4 address \(prefix 10\.10 \+"):
        load_scenario(write(tmp_path, BASE), parse_overrides(["cluster.clusters.0.prefix=10.10"]))


@pytest.mark.parametrize(("overrides", "seed", "policy", "message"), [
    (["workload.generator.count=-5"], None, None,
     "--set: workload.generator.count: expected a positive integer, got -5"),
    (["seed=x"], None, None, "--set: seed: expected a non-negative integer, got 'x'"),
    ([], -1, None, "--seed: seed: expected a non-negative integer, got -1"),
    ([], None, "nope", "--policy: policy.name: unknown policy 'nope' (known: best_fit,"),
    (["policy.params.bogus=1"], None, "consolidate",
     "--set: policy.params.bogus: unknown parameter of policy 'consolidate' (known: idle_timeout_s, min_on)"),
    (["cluster.clusters.3.count=1"], None, None,
     "--set: cannot set cluster.clusters.3.count: cluster.clusters is a list of 1 items"),
    (["workload.generator.cors=1"], None, None,
     "--set: workload.generator.cors: unknown key (did you mean 'cores'?) (expected one of: count, arrival,"),
    (["initial_power=off"], None, None,
     "--set: initial_power: every node starts off and policy 'best_fit' never switches one on"),
])
def test_override_errors_name_the_option(tmp_path: Path, overrides: list[str], seed: int | None,
                                         policy: str | None, message: str) -> None:
    with pytest.raises(InputError) as exc:
        load_scenario(write(tmp_path, BASE), parse_overrides(overrides), seed=seed, policy=policy)
    assert str(exc.value).startswith(message), str(exc.value)


# ---------------------------------------------------------------- bad scenarios
BAD = [
    ("seed: 5", "seeds: 5", 2, "seeds",
     "unknown key (did you mean 'seed'?) "
     "(expected one of: name, description, seed, horizon_s, sample_interval_s, retries, "
     "initial_power, event_log, decision_trace, faults, cluster, workload, policy, queue, workflow, "
     "walltime, images)"),
    ("seed: 5", "seed: -1", 2, "seed", "expected a non-negative integer, got -1"),
    ("seed: 5", "seed: 1.5", 2, "seed", "expected a non-negative integer, got 1.5"),
    ("seed: 5", "seed: five", 2, "seed", "expected a non-negative integer, got 'five'"),
    ("seed: 5", "horizon_s: 0", 2, "horizon_s", "expected a positive number, got 0"),
    ("seed: 5", "horizon_s: -60", 2, "horizon_s", "expected a positive number, got -60"),
    ("seed: 5", "sample_interval_s: 0", 2, "sample_interval_s", "expected a positive number, got 0"),
    ("seed: 5", "retries: -1", 2, "retries", "expected a non-negative integer, got -1"),
    ("seed: 5", "initial_power: maybe", 2, "initial_power", "expected one of on, off, got 'maybe'"),
    ("seed: 5", "initial_power: off", 2, "initial_power",
     "every node starts off and policy 'best_fit' never switches one on"),
    ("name: base", "name: ../escape", 1, "name", "expected letters, digits, '.', '_' or '-'"),
    ("name: base", "name: [a]", 1, "name", "expected a string, got a list"),
    ("policy: best_fit", "policy: bestfit", 13, "policy",
     "unknown policy 'bestfit' (did you mean 'best_fit'?) (known: best_fit,"),
    ("policy: best_fit", "policy: {name: nope}", 13, "policy.name", "unknown policy 'nope'"),
    ("policy: best_fit", "policy: {nam: best_fit}", 13, "policy.nam",
     "unknown key (did you mean 'name'?) (expected one of: name, params)"),
    ("policy: best_fit", "policy: {params: {}}", 13, "policy", "missing key 'name'"),
    ("policy: best_fit", "policy: 3", 13, "policy", "expected a policy name or a mapping with name and params, got 3"),
    ("policy: best_fit", "policy:", 13, "policy",
     "expected a policy name or a mapping with name and params, got nothing"),
    ("policy: best_fit", "policy: {name: best_fit, params: {x: 1}}", 13, "policy.params.x",
     "unknown parameter of policy 'best_fit' (known: none)"),
    ("policy: best_fit", "policy: {name: consolidate, params: {idle_timeout_s: soon}}", 13,
     "policy.params.idle_timeout_s", "expected float, got 'soon'"),
    ("policy: best_fit", "policy: {name: consolidate, params: {idle_timeout_s: -1}}", 13,
     "policy.params.idle_timeout_s", "idle_timeout_s must be >= 0"),
    ("policy: best_fit", "policy: {name: consolidate, params: [1]}", 13, "policy.params",
     "expected a mapping, got a list"),
    ("policy: best_fit", "policy: best_fit\nqueue: fifo", 14, "queue", "unknown policy 'fifo'"),
    ("policy: best_fit", "policy: best_fit\nqueue: {name: sjf, params: {skip_blocked: 1}}", 14,
     "queue.params.skip_blocked", "expected bool, got 1"),
    ("policy: best_fit\n", "", 1, "", "missing key 'policy'"),
    ("cores: {dist: uniform, low: 1, high: 2}", "cores: {dist: uniform, low: 1, high: 8}", 10,
     "workload.generator.cores", "tasks of up to 8 cores fit no node type (the largest has 4 cores)"),
    ("mem_mb: 256", "mem_mb: 4097", 11, "workload.generator.mem_mb",
     "tasks of up to 4097 MB fit no node type (the largest has 4096 MB)"),
    ("seed: 5", "seed: 5\nhorizon_s: 1e-3\nretries: on", 4, "retries", "expected a non-negative integer, got true"),
    ("name: base", "name: base\nname: again", 2, "name", "duplicate key 'name'"),
    ("seed: 5", "seed: 5\n\tx: 1", 3, "", "not valid YAML: found character '\\t' that cannot start any token"),
    ("arrival: {rate_per_s: 0.5}", "arrival: {rate_per_s: 0.5", 10, "", "not valid YAML"),
]


def _cases() -> list[tuple[str, int, str, str]]:
    out = []
    for old, new, line, key, message in BAD:
        assert old in BASE, old
        out.append((BASE.replace(old, new, 1), line, key, message))
    out.append(("", 0, "", "empty scenario"))
    out.append(("- a\n- b\n", 1, "", "expected a mapping, got a list"))
    return out


@pytest.mark.parametrize(("text", "line", "key", "message"), _cases(),
                         ids=[f"{c[2] or 'root'}:{c[3][:30]}" for c in _cases()])
def test_bad_scenarios_are_located(tmp_path: Path, text: str, line: int, key: str, message: str) -> None:
    f = write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    where = f"{f}:{line}: " if line else f"{f}: "
    assert str(exc.value).startswith(where + (f"{key}: " if key else "") + message), str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_base_of_the_bad_table_is_valid(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, BASE))
    assert sc.workload.count == 20 and sc.seed == 5


def test_a_misspelt_hook_is_an_input_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rpiaas.policy.base import hookimpl

    class Typo(Policy):
        """Misspells a hook."""

        NAME = "typo"

        @hookimpl
        def rpiaas_plac(self, task: Any, view: Any) -> int:
            return 0

    installed(monkeypatch, Typo)
    f = write(tmp_path, BASE.replace("policy: best_fit", "policy: typo"))
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    assert str(exc.value).startswith(f"{f}:13: policy: policy 'typo' (tests) is broken: ")
    assert "rpiaas_plac" in str(exc.value)


def test_a_policy_missing_a_required_parameter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Needs(Policy):
        """Needs a parameter."""

        NAME = "needs"

        def __init__(self, node: int) -> None:
            self.node = node

    installed(monkeypatch, Needs)
    f = write(tmp_path, BASE.replace("policy: best_fit", "policy: needs"))
    missing = f"{f}:13: policy.params: missing parameter 'node' of policy 'needs'"
    with pytest.raises(InputError, match=re.escape(missing)):
        load_scenario(f)
    ok = write(tmp_path, BASE.replace("policy: best_fit", "policy: {name: needs, params: {node: 1}}"), "ok.yaml")
    assert load_scenario(ok).policy.params == {"node": 1}


def test_parse_scenario_from_data_without_lines() -> None:
    data = yaml.safe_load(BASE)
    sc = parse_scenario(Source(copy.deepcopy(data), {}, "mem.yaml"))
    assert sc.name == "base" and sc.file == "mem.yaml"
    data["seed"] = -1
    with pytest.raises(InputError, match=r"^mem.yaml: seed: expected a non-negative integer, got -1$"):
        parse_scenario(Source(data, {}, "mem.yaml"))


# ---------------------------------------------------------------- the docs' examples
_BLOCK = re.compile(r"(?:<!--\s*(?P<mark>[^>]*?)\s*-->\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.S | re.M)


def _doc_blocks() -> list[tuple[int, str, str, str]]:
    """(line, lang, mark, body) of every fenced block of docs/scenario.md."""
    text = DOC.read_text()
    return [(text[:m.start("body")].count("\n"), m["lang"], m["mark"] or "", m["body"])
            for m in _BLOCK.finditer(text)]


def _marked(kind: str) -> list[tuple[int, str, str]]:
    return [(line, mark, body) for line, lang, mark, body in _doc_blocks()
            if lang in ("yaml", "json") and mark.split(" ")[0] == kind]


@pytest.fixture(scope="module")
def doc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster files the docs name, written where the docs' scenarios can find them."""
    d = tmp_path_factory.mktemp("doc")
    for _, mark, body in _marked("cluster"):
        parts = mark.split()
        if len(parts) > 1:
            (d / parts[1]).write_text(body)
    return d


def test_every_yaml_block_in_the_docs_is_checked() -> None:
    blocks = _doc_blocks()
    yaml_blocks = [b for b in blocks if b[1] in ("yaml", "json")]
    assert len(yaml_blocks) >= 8
    unmarked = [line for line, _, mark, _ in yaml_blocks
                if mark.split(" ")[0] not in ("scenario", "cluster", "fragment")]
    assert unmarked == [], f"docs/scenario.md: yaml blocks without a marker at lines {unmarked}"
    assert len(_marked("scenario")) >= 4 and len(_marked("cluster")) >= 3


@pytest.mark.parametrize(("line", "mark", "body"), _marked("cluster"), ids=lambda v: str(v)[:12])
def test_doc_cluster_blocks_are_valid(tmp_path: Path, line: int, mark: str, body: str) -> None:
    parts = mark.split()
    f = tmp_path / (parts[1] if len(parts) > 1 else "cluster.yaml")
    f.write_text(body)
    spec = load_cluster(f)
    assert spec.nodes


@pytest.mark.parametrize(("line", "mark", "body"), _marked("scenario"), ids=lambda v: str(v)[:12])
def test_doc_scenario_blocks_are_valid_and_run(doc_dir: Path, line: int, mark: str, body: str) -> None:
    f = doc_dir / f"doc-{line}.yaml"
    f.write_text(body)
    sc = load_scenario(f)
    summary, _ = simulate(sc)
    assert summary["tasks"] == sc.workload.count
    assert summary["completed"] + summary["rejected"] + summary["unfinished"] == summary["tasks"]


@pytest.mark.parametrize(("line", "mark", "body"), _marked("fragment"), ids=lambda v: str(v)[:12])
def test_doc_fragments_are_valid_in_a_scenario(line: int, mark: str, body: str) -> None:
    parts = mark.split()
    data = yaml.safe_load(BASE)
    node = data
    for key in (parts[1].split(".") if len(parts) > 1 else []):
        node = node[key]
    fragment, _ = load(body)  # as rpiaas reads YAML (1e3 is a number)
    assert isinstance(fragment, dict) and fragment
    node.update(fragment)
    sc = parse_scenario(Source(data, {}, f"docs/scenario.md:{line}"))
    simulate(sc)


# ---------------------------------------------------------------- example scenarios run
def _expected_ids(sc: Scenario) -> list[int]:
    """The tasks that arrive within the run, drawn exactly as the simulation draws them."""
    ids = []
    for t in sc.workload.tasks(rng_streams(sc.seed)["workload"]):  # in arrival order
        if sc.horizon_s is not None and t.arrival_s >= sc.horizon_s:
            break
        ids.append(t.id)
    return sorted(ids)


def test_there_are_example_scenarios() -> None:
    assert len(SCENARIOS) >= 4 and ROOT / "scenarios" / "quickstart.yaml" in SCENARIOS


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_example_scenario_runs(tmp_path: Path, path: Path) -> None:
    sc = load_scenario(path)
    assert sc.description, f"{path.name}: say what the experiment is for"
    summary, run = simulate(sc, tmp_path / "run")
    assert run == tmp_path / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no partial directory left
    assert {"run.json", "tasks.csv", "nodes.csv", "events.jsonl"} <= {p.name for p in run.iterdir()}

    meta = json.loads((run / "run.json").read_text())
    assert meta["mode"] == "sim" and meta["name"] == sc.name and meta["seed"] == sc.seed
    assert meta["summary"] == summary

    with open(run / "tasks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ids = sorted(int(r["task_id"]) for r in rows)
    assert ids == _expected_ids(sc), "every task that arrived has exactly one row"
    states = {s: sum(r["state"] == s for r in rows) for s in
              ("completed", "rejected", "failed", "killed", "queued", "running")}
    assert summary["tasks"] == len(rows)
    assert (summary["completed"], summary["rejected"], summary["failed"], summary["killed"]) == (
        states["completed"], states["rejected"], states["failed"], states["killed"])
    assert summary["unfinished"] == states["queued"] + states["running"]
    if sc.horizon_s is None:
        assert summary["unfinished"] == 0, "without a horizon every task ends"

    with open(run / "nodes.csv", newline="") as f:
        samples = list(csv.DictReader(f))
    assert {r["node"] for r in samples} == {n.name for n in sc.cluster.nodes}
    assert max(float(r["time_s"]) for r in samples) == pytest.approx(summary["duration_s"], rel=1e-11)

    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    arrived = sorted(e["task"] for e in events if e.get("ev") == "arrive")
    assert arrived == ids
    started = {e["task"] for e in events if e.get("act") == "start"}
    assert started == {int(r["task_id"]) for r in rows if r["start_s"] != ""}


def test_the_same_scenario_gives_the_same_bytes(tmp_path: Path) -> None:
    path = ROOT / "scenarios" / "backfill-vs-fcfs.yaml"
    runs = [simulate(load_scenario(path, parse_overrides(["workload.generator.count=400"])), tmp_path / f"r{i}")[1]
            for i in range(2)]
    for name in ("run.json", "tasks.csv", "nodes.csv", "events.jsonl"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name


def test_the_docs_error_examples_are_what_rpiaas_says(tmp_path: Path) -> None:
    text = DOC.read_text()
    shown = text[text.index("## Errors"):text.index("## YAML notes")]
    two = _marked("scenario")[0][2]
    racks = next(body for _, mark, body in _marked("cluster") if mark == "cluster racks.yaml")
    (tmp_path / "racks.yaml").write_text(racks.replace("serial: 1a2b3c4e", "serial: 1a2b3c4"))
    variants = [
        two.replace("cores: {dist: choice, values: [1, 2, 4], weights: [0.6, 0.3, 0.1]}", "cores: -1"),
        two.replace("prefix: 10.0.2", "prefix: 10.0.1"),
        two.replace("policy: best_fit", "policy: bestfit"),
        two.replace("seed: 42", "seed: 42\n\tx: 1"),
    ]
    errors = []
    for variant in variants:
        with pytest.raises(InputError) as exc:
            load_scenario(write(tmp_path, variant, "two-racks.yaml"))
        errors.append(exc.value)
    with pytest.raises(InputError) as exc:
        load_cluster(tmp_path / "racks.yaml")
    errors.append(exc.value)
    for e in errors:
        message = str(e).replace(f"{tmp_path}/", "").split("(known:")[0]
        assert f"error: {message}" in shown, message


_TYPOS = [*":-{}[],&*!|>'\"#@ \n\t0123456789.eE+~?<=",
          "yes", "null", "!!int ", "<<: ", "*a", "&a ", "- ", "1e9"]
_EDITS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(["del", "ins", "set"]),
                            st.sampled_from(_TYPOS)),
                  min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS, which=st.sampled_from(SCENARIOS))
def test_a_mangled_scenario_is_valid_or_one_located_error(tmp_path: Path, edits: list[Any],
                                                          which: Path) -> None:
    """Whatever the typo, the answer is a scenario or one InputError line naming the file."""
    text = list(which.read_text())
    for where, op, s in edits:
        i = int(where * len(text))
        if op == "del":
            del text[i]
        elif op == "ins":
            text.insert(i, s)
        else:
            text[i] = s
    f = tmp_path / "mangled.yaml"
    f.write_text("".join(text))
    (tmp_path / "clusters").mkdir(exist_ok=True)
    shutil.copy(ROOT / "scenarios" / "clusters" / "rpiaas-original.json", tmp_path / "clusters")
    shutil.copytree(ROOT / "scenarios" / "workflows", tmp_path / "workflows", dirs_exist_ok=True)
    try:
        load_scenario(f)
    except InputError as e:
        assert "\n" not in str(e)
        assert str(e).startswith(str(f)) or "rpiaas-original.json" in str(e) or "montage-58.json" in str(e), str(e)


def test_a_count_beyond_a_million_nodes_is_a_typo(tmp_path: Path) -> None:
    f = write(tmp_path, BASE.replace("count: 2, type: rpi4b", "count: 100000000000, type: rpi4b"))
    with pytest.raises(InputError, match=re.escape(
            f"{f}:5: cluster.clusters[0].count: the cluster reaches 100,000,000,000 nodes here "
            "(limit 1,000,000 nodes; set RPIAAS_MAX_NODES to raise it)")):
        load_scenario(f)


def test_the_node_limit_is_cluster_wide_and_checked_before_a_node_is_built(tmp_path: Path) -> None:
    # two groups of 600,000: each under the limit, together over it; refused at once
    f = write(tmp_path, BASE.replace(
        "    - {domain: a.test, prefix: 10.0.1, count: 2, type: rpi4b}\n",
        "    - {domain: a.test, count: 600000, type: rpi4b}\n"
        "    - {domain: b.test, count: 600000, type: rpi5}\n"))
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=re.escape("cluster.clusters[1].count: the cluster reaches "
                                                   "1,200,000 nodes here")):
        load_scenario(f)
    assert time.perf_counter() - t0 < 1.0


# ---------------------------------------------------------------- the documented time semantics
TRACE = """\
cluster:
  clusters: [{count: 1, type: rpi4b}]
workload:
  tasks:
    - {id: 1, arrival_s: 0, cores: 4, mem_mb: 100, work_core_s: 40}    # runs 0 .. 10
    - {id: 5, arrival_s: 10, cores: 4, mem_mb: 100, work_core_s: 40}
    - {id: 3, arrival_s: 10, cores: 4, mem_mb: 100, work_core_s: 40}
policy: first_fit
"""


def _rows(tmp_path: Path, text: str) -> tuple[dict[str, Any], dict[int, dict[str, str]]]:
    summary, run = simulate(load_scenario(write(tmp_path, text)), tmp_path / "run")
    with open(run / "tasks.csv", newline="") as f:
        return summary, {int(r["task_id"]): r for r in csv.DictReader(f)}


def test_ties_finishes_before_arrivals_then_by_id(tmp_path: Path) -> None:
    summary, rows = _rows(tmp_path, TRACE)
    assert float(rows[1]["end_s"]) == 10.0
    assert float(rows[3]["start_s"]) == 10.0  # the cores freed at 10 go to an arrival at 10 ...
    assert float(rows[5]["start_s"]) == 20.0  # ... the lower id first, whatever the file order
    assert summary["duration_s"] == 30.0  # without a horizon: the time of the last event


def test_the_horizon_cuts_at_exactly_its_time(tmp_path: Path) -> None:
    summary, rows = _rows(tmp_path, TRACE + "horizon_s: 10\n")
    assert list(rows) == [1]  # arrivals at the horizon are not part of the run
    assert rows[1]["state"] == "running"  # a task ending exactly at the horizon has not ended
    assert (summary["tasks"], summary["unfinished"], summary["duration_s"]) == (1, 1, 10.0)


def test_the_horizon_is_the_span_even_when_the_work_is_done(tmp_path: Path) -> None:
    summary, rows = _rows(tmp_path, TRACE + "horizon_s: 100\n")
    assert [r["state"] for r in rows.values()] == ["completed"] * 3
    assert summary["duration_s"] == 100.0
    idle, full = 2.7, 6.4  # rpi4b: 30 s at full power, 70 s idle
    assert summary["energy_j"] == pytest.approx(30 * full + 70 * idle)


SMALL_SCENARIO = """\
name: small
cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 4, type: rpi4b}]}
workload:
  generator: {count: 50, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}
policy: best_fit
"""


def test_the_api_takes_overrides_as_a_mapping_strings_or_pairs(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(SMALL_SCENARIO)
    assert load_scenario(f, {"workload.generator.count": 7}).workload.count == 7
    assert load_scenario(f, ["workload.generator.count=8", ("seed", 3)]).workload.count == 8
    assert load_scenario(f, [["seed", 4]]).seed == 4
    with pytest.raises(InputError, match=r"^overrides: \[1\]: expected 'key.path=value' or a "
                                         r"\(key.path, value\) pair, got 5"):
        load_scenario(f, ["seed=1", 5])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"^overrides: expected a mapping"):
        load_scenario(f, "seed=1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^--set: expected key.path=value, got 'seed'"):
        load_scenario(f, ["seed"])


def test_policy_parameters_follow_the_string_rule_and_set_takes_the_blame(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    class Moded(Policy):
        """A mode that is a word."""

        NAME = "moded"

        def __init__(self, mode: str = "on") -> None:
            if mode not in ("on", "off", "auto"):
                raise ValueError("expected on, off or auto")
            self.mode = mode

    installed(monkeypatch, Moded)
    f = write(tmp_path, BASE.replace("policy: best_fit", "policy: {name: moded, params: {mode: off}}"))
    assert load_scenario(f).policy.params["mode"] == "off"  # the word, as YAML wrote it, not false
    g = write(tmp_path, BASE.replace("policy: best_fit", "policy: {name: moded, params: {mode: on}}"), "g.yaml")
    assert load_scenario(g, overrides=["policy.params.mode=off"]).policy.params["mode"] == "off"
    # the policy's own refusal of a --set value is blamed on --set, not on the file's line
    with pytest.raises(InputError) as exc:
        load_scenario(g, overrides=["policy.params.mode='bad'"])
    assert str(exc.value) == "--set: policy.params.mode: expected on, off or auto"
    with pytest.raises(InputError) as exc:
        load_scenario(write(tmp_path, BASE.replace(
            "policy: best_fit", "policy: {name: moded, params: {mode: bad}}"), "h.yaml"))
    assert str(exc.value).endswith(":13: policy.params.mode: expected on, off or auto")


@pytest.mark.parametrize("value", ['"two\\nlines"', '"a\\u0000b"', '"  "'])
def test_a_cluster_text_that_is_no_file_name_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    f = write(tmp_path, BASE.replace("cluster:\n  clusters:\n    - {domain: a.test, prefix: 10.0.1, count: 2, "
                                     "type: rpi4b}\n", f"cluster: {value}\n"))
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"{f}:3: cluster: expected a cluster mapping or the name of a cluster file")


_INPUT_FIELDS = ("id", "arrival_s", "cores", "mem_mb", "work_core_s", "kind", "command", "env",
                 "tenant", "priority", "after", "walltime_s", "nodes", "parts", "procs", "image",
                 "network")


def _inputs(sc: Any) -> list[tuple[Any, ...]]:
    return [tuple(getattr(t, f) for f in _INPUT_FIELDS)
            for t in sc.workload.tasks(rng_streams(sc.seed)["workload"])]


def test_a_trace_goes_to_a_master_as_the_same_tasks_jobs_included() -> None:
    """``payload()`` gives a trace as its task list: every input field of every task (a job's
    nodes, parts and processes too) reads back the same, or a live replay would differ."""
    sc = load_scenario(ROOT / "scenarios" / "trace-replay.yaml")
    tasks = _inputs(sc)
    assert any(t[_INPUT_FIELDS.index("nodes")] > 1 for t in tasks)
    assert _inputs(scenario(sc.payload())) == tasks


@pytest.mark.parametrize("shape", [{"nodes": 3}, {"procs": 10}, {"procs": 10, "spread": "exclusive"},
                                   {"procs": 6, "spread": "spread"}, {"procs": 6, "spread": "exclusive"},
                                   {"procs": 8}])
def test_every_job_shape_reads_back_from_its_inline_form(shape: dict[str, Any]) -> None:
    from rpiaas.scenario import _task_json
    data = {"name": "j", "seed": 1, "policy": "best_fit",
            "cluster": {"clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 8, "type": "rpi4b"}]},
            "workload": {"tasks": [{"arrival_s": 0, "cores": 4, "mem_mb": 10, "work_core_s": 5, **shape}]}}
    sc = scenario(data)
    (task,) = sc.workload.tasks(np.random.default_rng(0))
    again = scenario({**data, "workload": {"tasks": [_task_json(task)]}})
    assert _inputs(again) == _inputs(sc)


@pytest.mark.parametrize("key", ["cluster", "trace", "wfcommons"])
def test_a_file_name_the_system_refuses_is_one_located_error(tmp_path: Path, key: str) -> None:
    """A name too long for the file system (as a mangled file gives) is refused at its key in
    one line, never an OSError."""
    name = "x" * 300 + ".json"
    data: dict[str, Any] = {"name": "f", "policy": "best_fit",
                            "cluster": {"clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 1,
                                                      "type": "rpi4b"}]},
                            "workload": {"tasks": []}}
    where = {"cluster": "cluster", "trace": "workload.trace.path", "wfcommons": "workload.wfcommons.file"}[key]
    if key == "cluster":
        data["cluster"] = name
    elif key == "trace":
        data["workload"] = {"trace": {"path": name}}
    else:
        data["workload"] = {"wfcommons": {"file": name}}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    text = str(exc.value)
    assert f": {where}: cannot read the " in text and "File name too long" in text and "\n" not in text
