"""Input that would crash, hang or fill the disk is refused up front, with its limit.

Deep nesting, YAML alias bombs, oversized files, runs that cannot finish and
clusters past the node limit: each is one located line naming the limit and
the variable that raises it, within a second and a few megabytes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rpiaas.cluster import load_cluster
from rpiaas.inputs.limits import LIMITS
from rpiaas.inputs.source import InputError, LimitError, load, load_file
from rpiaas.scenario import load_scenario, parse_overrides
from rpiaas.sim import simulate

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"

TWENTY = """\
name: twenty
cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 20, type: rpi4b}]}
workload:
  generator: {count: 20, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}
policy: best_fit
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- nesting
@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_deep_nesting_is_one_located_line(tmp_path: Path, opening: str) -> None:
    depth = 500
    if opening == "- ":
        text = "name: x\ncluster:\n" + "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "1\n"
    else:
        close = "]" if opening == "[" else "}"
        text = "name: x\ncluster: " + opening * depth + "1" + close * depth + "\n"
    f = write(tmp_path, text)
    with pytest.raises(LimitError) as exc:
        load_scenario(f)
    message = str(exc.value)
    assert re.match(rf"{re.escape(str(f))}:\d+: nested deeper than 50 levels \(limit 50 levels; "
                    r"set RPIAAS_MAX_DEPTH to raise it\)$", message), message


def test_deep_json_and_deep_set_values_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path, "[" * 100_000 + "]" * 100_000, "c.json")
    with pytest.raises(LimitError, match=r"nested too deeply .*RPIAAS_MAX_DEPTH"):
        load_cluster(f)
    with pytest.raises(LimitError, match=r"^--set: name: nested deeper than 50 levels"):
        parse_overrides(["name=" + "[" * 1000 + "]" * 1000])
    with pytest.raises(LimitError, match=r"^--set: a key path of 1,000 parts"):
        load_scenario(QUICKSTART, [(".".join(["a"] * 1000), 1)])


def test_the_depth_limit_can_be_raised_within_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: " + "[" * 80 + "]" * 80
    with pytest.raises(LimitError):
        load(text)
    monkeypatch.setenv("RPIAAS_MAX_DEPTH", "100")
    assert isinstance(load(text)[0]["a"], list)
    monkeypatch.setenv("RPIAAS_MAX_DEPTH", "100000")  # past what Python's stack can hold
    with pytest.raises(InputError, match=r"^RPIAAS_MAX_DEPTH: expected a positive number up to 200"):
        load(text)


# ---------------------------------------------------------------- aliases
def test_an_alias_bomb_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    f = write(tmp_path, bomb())
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as exc:
        load_file(f)
    assert time.perf_counter() - t0 < 1.0
    assert re.match(rf"{re.escape(str(f))}:\d+: aliases expand this value to [\d,]+ values, more than "
                    r"100,000 beyond those written \(limit 100,000 values; set RPIAAS_MAX_ALIAS_VALUES",
                    str(exc.value)), str(exc.value)


def test_aliases_that_nest_deep_are_refused(tmp_path: Path) -> None:
    text = "a: &a [x]\n" + "".join(
        f"b{i}: &b{i} " + "[" * 40 + ("*a" if i == 1 else f"*b{i - 1}") + "]" * 40 + "\n"
        for i in range(1, 30))
    with pytest.raises(LimitError, match=r"aliases nest this value deeper than 50 levels"):
        load(text)


def test_ordinary_aliases_and_merges_still_work() -> None:
    data, _ = load("d: &d {cores: 2}\nx: {<<: *d, mem_mb: 3}\ny: [*d, *d]\n")
    assert data["x"] == {"cores": 2, "mem_mb": 3} and data["y"] == [{"cores": 2}] * 2


def test_the_alias_limit_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_MAX_ALIAS_VALUES", "2000")
    with pytest.raises(LimitError):
        load(bomb(3))  # 9^4 values
    monkeypatch.setenv("RPIAAS_MAX_ALIAS_VALUES", "20000")
    assert len(load(bomb(3))[0]["d"]) == 9


# ---------------------------------------------------------------- size
def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    with f.open("w") as out:
        out.write("name: x\n")
        out.write(("# " + "y" * 998 + "\n") * 12_000)  # 12 MB of comments
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as exc:
        load_scenario(f)
    assert time.perf_counter() - t0 < 1.0
    assert str(exc.value) == (f"{f}: more than 10.0 MB of input, more than rpiaas reads "
                              "(limit 10 MB; set RPIAAS_MAX_INPUT_MB to raise it)")


def test_an_endless_file_is_read_only_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "0.5")
    with pytest.raises(LimitError, match=r"limit 0.5 MB"):
        load_file("/dev/zero")


def test_the_size_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path, TWENTY + "description: " + "x" * 2_000_000 + "\n")
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "1")
    with pytest.raises(LimitError):
        load_scenario(f)
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "3")
    assert load_scenario(f).name == "twenty"
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "lots")
    with pytest.raises(InputError, match=r"^RPIAAS_MAX_INPUT_MB: expected a positive number, got 'lots'"):
        load_scenario(f)


# ---------------------------------------------------------------- runs that cannot finish
@pytest.mark.parametrize(("override", "line", "key", "message"), [
    ("sample_interval_s=1e-6", None, "sample_interval_s", "sampling 20 nodes every 1e-06 s"),
    ("horizon_s=1e12", None, "horizon_s", "1e+12 s is beyond the longest simulated time "
                                          "(limit 10,000,000,000 s; set RPIAAS_MAX_SIM_TIME_S"),
    ("workload.generator.work_core_s=1e12", None, "workload.generator.work_core_s",
     "the run would last at least"),
    ("workload.generator.count=1000000000", None, "workload.generator.count",
     "1,000,000,000 tasks is more than a run takes (limit 100,000,000 tasks; set RPIAAS_MAX_TASKS"),
])
def test_a_run_that_cannot_finish_is_refused_before_it_starts(
        tmp_path: Path, override: str, line: int | None, key: str, message: str) -> None:
    f = write(tmp_path, TWENTY)
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as exc:
        load_scenario(f, [override])
    assert time.perf_counter() - t0 < 2.0
    assert str(exc.value).startswith(f"--set: {key}: {message}"), str(exc.value)


def test_explicit_tasks_of_endless_work_are_refused_at_the_task(tmp_path: Path) -> None:
    f = write(tmp_path, TWENTY.replace(
        "  generator: {count: 20, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}",
        "  tasks:\n    - {arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 10}\n"
        "    - {arrival_s: 1, cores: 1, mem_mb: 64, work_core_s: 1e12}"))
    with pytest.raises(LimitError, match=re.escape(f"{f}:6: workload.tasks[1].work_core_s: the run "
                                                   "would last at least")):
        load_scenario(f)


def test_a_fault_far_in_the_future_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path, TWENTY + "faults: [{node: node1.c.test, at_s: 1e300}]\n")
    with pytest.raises(LimitError, match=re.escape(f"{f}:6: faults[0]: the run would last at least "
                                                   "1e+300 simulated seconds")):
        load_scenario(f)


def test_the_run_itself_stops_at_the_sample_limit_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the estimate (mean work) is short of the heavy tail: the run's own check stops it
    f = write(tmp_path, TWENTY.replace(
        "work_core_s: 10", "work_core_s: {dist: choice, values: [1, 1e6], weights: [0.95, 0.05]}"))
    monkeypatch.setenv("RPIAAS_MAX_SAMPLE_ROWS", "5000")
    sc = load_scenario(f)
    out = tmp_path / "runs" / "r"
    with pytest.raises(LimitError, match=r"sample_interval_s: the run wrote 5,0\d\d rows of nodes.csv "
                                         r"by simulated time .* \(limit 5,000 rows"):
        simulate(sc, out)
    assert list((tmp_path / "runs").iterdir()) == []


def test_limits_are_documented() -> None:
    text = (ROOT / "docs" / "scenario.md").read_text()
    for limit in LIMITS:
        assert f"`{limit.variable}`" in text, limit.variable


# ---------------------------------------------------------------- a million nodes
@pytest.mark.parametrize("count", ["1e12", "1.5e6", "2000001"])
def test_a_count_past_the_node_limit_is_refused_however_written(tmp_path: Path, count: str) -> None:
    f = write(tmp_path, f"clusters:\n  - {{count: 600000, type: rpi4b}}\n"
                        f"  - {{count: {count}, type: rpi4b, hostname: 'n{{i}}'}}\n", "c.yaml")
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=re.escape(f"{f}:3: clusters[1].count: the cluster reaches")):
        load_cluster(f)
    assert time.perf_counter() - t0 < 1.0


def test_a_million_node_cluster_validates_in_seconds(tmp_path: Path) -> None:
    f = write(tmp_path, "clusters:\n  - {domain: big.test, count: 1000000, type: rpi4b}\n", "c.yaml")
    t0 = time.perf_counter()
    spec = load_cluster(f)
    assert len(spec.nodes) == 1_000_000 and spec.nodes[-1].hostname == "node1000000"
    assert time.perf_counter() - t0 < 20.0  # about 3 s on an idle machine
