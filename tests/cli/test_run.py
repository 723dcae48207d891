"""rpiaas run: the summary table, overrides, seeds, the run directory (as a real process); live mode's option checks."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.cli import main
from rpiaas.cli.run import format_summary

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def rpiaas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_run_the_quickstart_prints_a_summary_table(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "run", str(QUICKSTART))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "quickstart · best_fit · queue fcfs · seed 42 · sim"
    assert set(lines[1]) == {"─"}
    blank = lines.index("")
    table = dict(line.rsplit(None, 1) for line in lines[2:blank])
    table = {k.strip(): v for k, v in table.items()}
    assert table["tasks"] == "2,000" and table["completed"] == "2,000" and table["unfinished"] == "0"
    assert {"mean_wait_s", "p95_wait_s", "mean_utilization", "energy_j", "mean_power_w"} <= set(table)
    # no fault, retry, kill or power-on: one line says so; then a line per node type
    assert table["faults, retries, kills"] == "none" and "retries" not in table
    types = [line.split() for line in lines[blank + 1:-1]]
    assert types[0] == ["node", "type", "nodes", "tasks", "wait", "s", "response", "s", "util", "energy", "J",
                        "energy", "from"]
    assert [row[0] for row in types[1:]] == ["rpi4b", "rpi3b"] and all(row[-1] == "modelled" for row in types[1:])
    assert sum(int(row[2].replace(",", "")) for row in types[1:]) == 2000
    run = tmp_path / "runs" / "quickstart-best_fit-s42"  # the default run directory
    assert lines[-1] == f"run directory: {run.relative_to(tmp_path)}"
    summary = json.loads((run / "run.json").read_text())["summary"]
    assert table["mean_utilization"] == f"{summary['mean_utilization']:,.4g}"
    with open(run / "tasks.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2000


def test_overrides_seed_and_policy(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = rpiaas(tmp_path, "run", str(QUICKSTART), "--out", str(out), "--quiet",
               "--set", "workload.generator.count=60", "--set", "sample_interval_s=10",
               "--seed", "7", "--policy", "consolidate", "--set", "policy.params.min_on=3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"run directory: {out}"  # --quiet: no table
    meta = json.loads((out / "run.json").read_text())
    assert (meta["seed"], meta["policy"], meta["summary"]["tasks"]) == (7, "consolidate", 60)
    assert meta["policy_params"] == {"idle_timeout_s": 300.0, "min_on": 3}
    assert meta["scenario"]["workload"]["generator"]["count"] == 60
    assert meta["scenario"]["sample_interval_s"] == 10


def test_seed_changes_the_run_and_the_same_seed_repeats_it(tmp_path: Path) -> None:
    def tasks(seed: str, out: str) -> bytes:
        r = rpiaas(tmp_path, "run", str(QUICKSTART), "-q", "--out", out, "--seed", seed,
                   "--set", "workload.generator.count=200")
        assert r.returncode == 0, r.stderr
        return (tmp_path / out / "tasks.csv").read_bytes()

    first = tasks("1", "a")
    assert first == tasks("1", "b")
    assert first != tasks("2", "c")


def test_rerunning_into_a_run_directory_replaces_it_with_force(tmp_path: Path) -> None:
    out = tmp_path / "run"
    for count in ("30", "40"):
        r = rpiaas(tmp_path, "run", str(QUICKSTART), "-q", "--out", str(out), "--force",
                   "--set", f"workload.generator.count={count}")
        assert r.returncode == 0, r.stderr
    assert json.loads((out / "run.json").read_text())["summary"]["tasks"] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_directory_that_is_not_a_run_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    r = rpiaas(tmp_path, "run", str(QUICKSTART), "-q", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


# ---------------------------------------------------------------- in process
def test_format_summary_aligns_units_and_missing_values() -> None:
    text = format_summary({"tasks": 2000, "mean_wait_s": 1.23456, "energy_j": 123456.7, "p95_wait_s": None},
                          title="t")
    assert text.splitlines() == ["t", "─" * 21, "tasks           2,000", "mean_wait_s     1.235",
                                 "energy_j      123,457", "p95_wait_s          —"]


def test_format_summary_shows_the_counts_that_are_not_zero_and_a_line_per_node_type() -> None:
    text = format_summary({"tasks": 10, "faults_node_down": 2, "faults_node_up": 0, "retries": 3,
                           "kills_node_lost": 3, "power_ons": 0,
                           "by_node_type": {"rpi4b": {"nodes": 2, "tasks": 10, "mean_wait_s": 1.5,
                                                      "mean_response_s": None, "mean_utilization": 0.25,
                                                      "energy_j": 1234.5, "energy_source": "measured"}}})
    lines = text.splitlines()
    assert [line.split() for line in lines[:4]] == [["tasks", "10"], ["faults_node_down", "2"], ["retries", "3"],
                                                    ["kills_node_lost", "3"]]
    assert lines[4] == "" and lines[6].split() == ["rpi4b", "2", "10", "1.5", "—", "0.25", "1,234", "measured"]


@pytest.mark.parametrize(("args", "message"), [
    ([], "error: --master: --live needs --master URL (or $RPIAAS_MASTER_URL)\n"),
    (["--master", "ftp://x"], "error: --master: expected an http:// or https:// URL, got 'ftp://x'\n"),
    (["--master", "http://127.0.0.1:9", "--timescale", "0"],
     "error: --timescale: expected a positive number, got 0.0\n"),
])
def test_live_mode_refuses_bad_options_before_it_connects(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        args: list[str], message: str) -> None:
    monkeypatch.delenv("RPIAAS_MASTER_URL", raising=False)
    assert main(["run", str(QUICKSTART), "--live", "-q", "--out", str(tmp_path / "r"), *args]) == 2
    assert capsys.readouterr().err == message
    assert not (tmp_path / "r").exists()


def test_run_names_never_collide_for_different_settings() -> None:
    """The default directory names what --set changed; different lists get different names."""
    from rpiaas.cli.run import run_name
    from rpiaas.scenario import load_scenario

    sc = load_scenario(Path(__file__).parents[2] / "scenarios" / "quickstart.yaml")
    plain = run_name(sc, [])
    assert plain == "quickstart-best_fit-s42"
    lists = [["queue=easy_backfill"], ["queue=sjf"], ["a.b=c"], ["a_b=c"], ["a.b=c", "x=1"],
             ["x=1", "a.b=c"], ["k=" + "v" * 200], ["k=" + "v" * 199 + "w"]]
    names = [run_name(sc, overrides) for overrides in lists]
    assert len(set(names)) == len(names) and plain not in names
    assert names[0].startswith("quickstart-best_fit-s42-queue-easy_backfill-")
    assert all(len(n) < 100 for n in names)
    assert run_name(sc, ["queue=sjf"], live=True) == names[1] + "-live"
