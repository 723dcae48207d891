"""Sweeps: the grid, the statistics, a local process pool, resuming, and a real Dask cluster."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.sweep import expand, mean_ci, parse_seeds, split_values, sweep, t_quantile

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCENARIO = """\
name: tiny
seed: 3
event_log: false
cluster:
  clusters:
    - {domain: lab.test, prefix: 10.0.1, count: 4, type: rpi4b}
workload:
  generator:
    count: 200
    arrival: {rate_per_s: 0.02}
    cores: {dist: choice, values: [1, 2, 4]}
    mem_mb: 256
    work_core_s: {dist: exponential, mean: 300}
policy: best_fit
"""


@pytest.fixture()
def scenario(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(SCENARIO)
    return p


def rpiaas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- the grid and the statistics
def test_seeds_and_values() -> None:
    assert parse_seeds("1-3") == [1, 2, 3] and parse_seeds("7") == [7]
    assert parse_seeds("1,2,5-7") == [1, 2, 5, 6, 7]
    for bad in ("3-1", "a-b", "1,1", "-2"):
        with pytest.raises(InputError):
            parse_seeds(bad)
    assert split_values("0.5,1,2") == ["0.5", "1", "2"]
    assert split_values("{dist: uniform, low: 1, high: 4},3,'a,b'") == [
        "{dist: uniform, low: 1, high: 4}", "3", "'a,b'"]


def test_the_grid_names_each_run(scenario: Path, tmp_path: Path) -> None:
    specs = expand([scenario], ["best_fit", "first_fit"], [1, 2],
                   ["workload.generator.count=50,100", "horizon_s=1e6"], tmp_path / "out")
    assert len(specs) == 2 * 2 * 2
    names = [s.name for s in specs]
    assert names[:3] == ["tiny-best_fit-count=50-s1", "tiny-best_fit-count=50-s2",
                         "tiny-best_fit-count=100-s1"]
    assert len(set(names)) == 8 and all(s.fixed == (("horizon_s", "1e6"),) for s in specs)
    assert Path(specs[0].out) == (tmp_path / "out" / "runs" / names[0]).resolve()
    # no --policy, no --seeds: the scenario's own
    assert [s.name for s in expand([scenario], [], None, [], tmp_path)] == ["tiny-best_fit-s3"]
    # a value with characters a file name should not hold: replaced, plus a stable hash
    a, b = expand([scenario], [], [1], ["workload.generator.work_core_s={dist: exponential, mean: 10},"
                                        "{dist: exponential,  mean: 10}"], tmp_path)
    assert a.name.startswith("tiny-best_fit-work_core_s=_dist_exponential_mean_10-") and a.name.endswith("-s1")
    assert a.name != b.name


def test_a_bad_grid_point_is_an_input_error_before_any_run(scenario: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        expand([scenario], [], [1], ["workload.generator.count=10,-1"], tmp_path)
    assert e.value.path == "workload.generator.count"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 12, 29, 60, 250, 10_000])
def test_student_t_quantiles_are_scipys(df: int) -> None:
    from scipy.stats import t

    for p in (0.9, 0.95, 0.975, 0.995):
        assert t_quantile(p, df) == pytest.approx(float(t.ppf(p, df)), rel=1e-9)


def test_mean_and_confidence_interval() -> None:
    mean, sd, half = mean_ci([1.0, 2.0, 3.0])
    assert (mean, sd) == (2.0, 1.0) and half == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-6)
    assert mean_ci([5.0, 5.0]) == (5.0, 0.0, 0.0)
    assert mean_ci([4.0])[0] == 4.0


# ---------------------------------------------------------------- local process pool
def test_a_sweep_on_a_local_pool(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    r = rpiaas("sweep", str(scenario), "--policy", "best_fit", "--policy", "first_fit", "--seeds", "1-3",
               "--set", "workload.generator.count=50,100", "--workers", "2", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "12 runs (12 run now, 0 already done, 0 failed)" in r.stdout
    assert "mean_wait_s" in r.stdout and "±" in r.stdout and "sweep: 100%" in r.stderr  # table, bar
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 12 and len({r["run"] for r in rows}) == 12
    assert {r["set:workload.generator.count"] for r in rows} == {"50", "100"}
    assert all(int(r["tasks"]) == int(r["set:workload.generator.count"]) for r in rows)
    summary = read_csv(out / "summary.csv")
    wait = [s for s in summary if s["metric"] == "mean_wait_s"]
    assert len(wait) == 4 and all(s["n"] == "3" for s in wait)
    for s in wait:
        ws = [float(r["mean_wait_s"]) for r in rows if r["policy"] == s["policy"]
              and r["set:workload.generator.count"] == s["set:workload.generator.count"]]
        assert float(s["mean"]) == pytest.approx(sum(ws) / 3)
        assert float(s["ci95_low"]) <= float(s["mean"]) <= float(s["ci95_high"])
    png = out / "plots" / "mean_wait_s.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the runs were real processes: each run's directory was written by a pool worker
    again = rpiaas("sweep", str(scenario), "--policy", "best_fit", "--policy", "first_fit", "--seeds", "1-3",
                   "--set", "workload.generator.count=50,100", "--out", str(out), "-q", cwd=tmp_path)
    assert again.returncode == 0 and "(0 run now, 12 already done, 0 failed)" in again.stdout


def test_an_interrupted_sweep_continues_where_it_stopped(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    args = [sys.executable, "-m", "rpiaas", "sweep", str(scenario), "--seeds", "1-10", "--workers", "1",
            "--set", "workload.generator.count=3000", "--out", str(out), "-q"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list((out / "runs").glob("*/run.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the pool's processes too
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    assert 2 <= len(done) < 10
    assert f"interrupted: {len(done)} of 10 runs done; the same command continues the sweep" in err
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"({10 - len(done)} run now, {len(done)} already done, 0 failed)" in r.stdout
    for name, mtime in done.items():  # not redone
        assert (out / "runs" / name / "run.json").stat().st_mtime_ns == mtime
    assert len(read_csv(out / "sweep.csv")) == 10
    assert not list((out / "runs").glob(".*"))  # no half-written run left behind


def test_bad_sweep_input_is_one_line(scenario: Path, tmp_path: Path) -> None:
    r = rpiaas("sweep", str(scenario), "--seeds", "5-1", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: --seeds: ") and r.stderr.count("\n") == 1
    r = rpiaas("sweep", str(scenario), "--set", "workload.generator.cores=1,0", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: --set: workload.generator.cores"), r.stderr


# ---------------------------------------------------------------- Dask
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(scenario: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = rpiaas("sweep", str(scenario), "--seeds", "1-2", "--scheduler", f"tcp://127.0.0.1:{free_port()}",
               "--connect-timeout", "2", "--out", str(tmp_path / "sw"), cwd=tmp_path)
    assert time.monotonic() - t0 < 15
    assert r.returncode == 2 and r.stderr.startswith("error: --scheduler: cannot reach the Dask scheduler at "
                                                     "tcp://127.0.0.1:") and r.stderr.count("\n") == 1


class DaskCluster:
    """A scheduler and workers as separate processes on loopback."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.file = tmp / "scheduler.json"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(self.file)])
        self._wait(lambda: self.file.exists() and "address" in self.file.read_text())
        self.address = json.loads(self.file.read_text())["address"]

    def start(self, name: str, cmd: list[str]) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=self.tmp)

    def worker(self, name: str) -> None:
        self.start(name, [str(BIN / "dask"), "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                          "--no-nanny", "--no-dashboard", "--name", name])

    def wait_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="10s") as c:
            c.wait_for_workers(n, timeout=30)

    def _wait(self, ok: object) -> None:
        deadline = time.monotonic() + 30
        while not ok() and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.05)
        assert ok(), (self.tmp / "scheduler.log").read_text()  # type: ignore[operator]

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture()
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    pytest.importorskip("distributed")
    c = DaskCluster(tmp_path)
    try:
        c.worker("w1")
        c.worker("w2")
        c.wait_workers(2)
        yield c
    finally:
        c.stop()


def test_a_sweep_on_dask_survives_a_killed_worker(dask_cluster: DaskCluster, scenario: Path,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "sw"
    specs = expand([scenario], [], range(1, 9), ["workload.generator.count=2500"], out)
    victim = dask_cluster.procs["w1"]
    killed: list[str] = []  # the run the victim was writing when it died

    def kill_mid_run() -> None:
        # a worker runs its task in its own process (--no-nanny): the run being
        # written there is .NAME.partial-PID with the worker's pid
        mine = f".partial-{victim.pid}"
        while not killed:
            done = list((out / "runs").glob("*/run.json"))
            partial = [p for p in (out / "runs").glob(".*.partial-*") if p.name.endswith(mine)]
            if done and partial:
                victim.send_signal(signal.SIGKILL)
                killed.append(partial[0].name[1:-len(mine)])
            time.sleep(0.005)

    import threading

    t = threading.Thread(target=kill_mid_run, daemon=True)
    t.start()
    result = sweep(specs, out, scheduler=dask_cluster.address, progress=False, plots=False)
    t.join(timeout=5)
    assert killed and victim.poll() is not None  # the worker died holding a run
    assert result.failed == {} and result.ran == 8 and result.reused == 0
    rows = read_csv(out / "sweep.csv")
    assert sorted(r["run"] for r in rows) == sorted(s.name for s in specs)  # every run exactly once
    for s in specs:
        assert (Path(s.out) / "run.json").exists()
    assert (out / "runs" / killed[0] / "run.json").exists()  # redone by the other worker
    assert not list((out / "runs").glob(".*"))  # the killed attempt's partial directory is gone


def test_the_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/sweep.py --quick end to end: every figure present and sane (no timing targets)."""
    pytest.importorskip("distributed")
    out = tmp_path / "figures.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep.py"), "--quick", "--json", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "speed-up" in r.stdout and "jobs/s" in r.stdout
    f = json.loads(out.read_text())
    assert f["runs"] == 6 and f["serial_s"] > 0 and f["pool_speedup"] > 0 and f["dask_speedup"] > 0
    assert f["swf"]["jobs"] > 0 and f["swf"]["jobs_per_s"] > 0 and f["ceiling"] > 0
