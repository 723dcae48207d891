"""Running sweeps: a local process pool, resuming, a real Dask cluster, the benchmark."""

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

from rpiaas.sweep.grid import expand
from rpiaas.sweep.runner import sweep

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
def rpiaas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- local process pool
def test_a_sweep_on_a_local_pool(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    r = rpiaas("sweep", str(scenario), "--policy", "best_fit", "--policy", "first_fit", "--seeds", "1-3",
               "--set", "workload.generator.count=50,100", "--workers", "2", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "12 runs (12 run now, 0 already done, 0 failed)" in r.stdout
    assert "mean_wait_s" in r.stdout and "±" in r.stdout and "sweep: 100%" in r.stderr  # table, bar
    assert f"report (the table and every plot): {out / 'report.html'}\n" in r.stdout
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 12 and len({r["run"] for r in rows}) == 12
    assert {r["set:workload.generator.count"] for r in rows} == {"50", "100"}
    assert all(int(r["tasks"]) == int(r["set:workload.generator.count"]) for r in rows)
    # each node type's figures in columns of their own, their tasks adding up to the run's
    types = [k[len("by_node_type."):-len(".tasks")] for k in rows[0] if k.startswith("by_node_type.")
             and k.endswith(".tasks")]
    assert types and all(sum(int(r[f"by_node_type.{t}.tasks"]) for t in types) == int(r["tasks"]) for r in rows)
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


def test_failures_go_to_stderr_and_the_files_keep_their_headers(scenario: Path, tmp_path: Path) -> None:
    grid = ["--seeds", "1-2", "--set", "workload.generator.count=20", "--set", "queue=fcfs,sjf"]
    for blocked in (3, 4):  # some runs fail, then every run
        out = tmp_path / f"sw{blocked}"
        specs = expand([str(scenario)], [], [1, 2], ["workload.generator.count=20", "queue=fcfs,sjf"], out)
        (out / "runs").mkdir(parents=True)
        for spec in specs[:blocked]:  # a file where the run's directory goes: the run fails at its end
            Path(spec.out).write_text("not a run\n")
        # the progress bar on (no -q): what it writes must not send the failures to stdout
        r = rpiaas("sweep", str(scenario), *grid, "--workers", "1", "--out", str(out), cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert r.stdout.splitlines()[-1].startswith(
            f"4 runs ({4 - blocked} run now, 0 already done, {blocked} failed) in "), r.stdout
        assert " failed: " not in r.stdout, r.stdout
        errors = [ln for ln in r.stderr.splitlines() if " failed: " in ln]
        assert sorted(ln.split(" failed: ")[0].split()[-1] for ln in errors) == sorted(
            s.name for s in specs[:blocked]), r.stderr
        assert all("exists and is not a run directory" in ln for ln in errors)
        with open(out / "sweep.csv", newline="") as f:
            head, *rows = list(csv.reader(f))
        assert head[:5] == ["run", "scenario", "policy", "seed", "set:queue"] and len(rows) == 4 - blocked
        with open(out / "summary.csv", newline="") as f:
            head = next(csv.reader(f))
        assert head[:4] == ["scenario", "policy", "set:queue", "metric"] and head[-1] == "ci95_clipped"
        assert (out / "report.html").is_file()


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
