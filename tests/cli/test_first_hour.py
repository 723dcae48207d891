"""What a newcomer meets in the first hour: suggestions for typos, each command's error pointing
to its own ``--help``, help text for every argument, and no run directory replaced without a word."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from rpiaas.cli import COMMANDS, main
from rpiaas.cli.common import Parser
from rpiaas.inputs.errors import did_you_mean
from rpiaas.rundir import is_complete, read_run


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("word", "choices", "meant"), [
    ("rn", ["run", "validate", "traces"], "run"),
    ("polcy", ["name", "seed", "policy", "cluster"], "policy"),
    ("rpi4", ["rpi3b", "rpi4b", "rpi5", "qemu_a53"], "rpi4b"),
    ("best-fit", ["first_fit", "best_fit", "worst_fit"], "best_fit"),
    ("Seed", ["name", "seed"], "seed"),
    ("work", ["work_core_s", "arrival"], "work_core_s"),
])
def test_a_typo_gets_the_closest_word(word: str, choices: list[str], meant: str) -> None:
    assert did_you_mean(word, choices) == f" (did you mean {meant!r}?)"


def test_nothing_close_suggests_nothing() -> None:
    assert did_you_mean("xyzzy", ["run", "validate"]) == ""
    assert did_you_mean("run", ["run"]) == ""
    assert did_you_mean("a" * 1000, ["a" * 1000 + "b"]) == ""  # long words are not compared


def test_a_mistyped_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, "rn")
    assert "invalid choice: 'rn'" in err and "(did you mean 'run'?)" in err
    assert err.rstrip().endswith("(see rpiaas --help)")


def test_a_commands_error_points_to_its_own_help(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _error(capsys, "run", str(tmp_path / "s.yaml"), "--sed", "3")
    assert err == ("error: rpiaas run: unrecognized arguments: --sed 3 (did you mean '--seed'?) "
                   "(see rpiaas run --help)\n")
    err = _error(capsys, "run", "s.yaml", "--task-kind", "slep")
    assert "(did you mean 'sleep'?)" in err and err.rstrip().endswith("(see rpiaas run --help)")
    err = _error(capsys, "validate", "s.yaml", "--nope")
    assert err.rstrip().endswith("(see rpiaas validate --help)")


def test_a_scenario_key_node_type_and_policy_get_suggestions(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    base = ("name: t\ncluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 2, type: rpi4b}]}\n"
            "workload:\n  generator: {count: 5, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, "
            "work_core_s: 1}\npolicy: best_fit\n")
    cases = {"polcy": (base.replace("policy: best_fit", "polcy: best_fit"), "(did you mean 'policy'?)"),
             "type": (base.replace("type: rpi4b", "type: qemu_a35"), "(did you mean 'qemu_a53'?)"),
             "policy": (base.replace("policy: best_fit", "policy: best-fit"), "(did you mean 'best_fit'?)")}
    for name, (text, hint) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        assert main(["validate", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert hint in err and err.count("\n") == 1, (name, err)


def _parsers() -> list[argparse.ArgumentParser]:
    root = Parser(prog="rpiaas")
    sub = root.add_subparsers()
    for command in COMMANDS:
        command.add_parser(sub)
    out, todo = [], list(sub.choices.values())
    while todo:  # the commands and their own subcommands (testbed up, ...)
        p = todo.pop()
        out.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return out


def test_every_argument_has_help() -> None:
    missing = [f"{p.prog} {a.dest}" for p in _parsers() for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
               and not a.help]
    assert missing == []


def test_run_help_says_it_runs_live_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("run "))
    assert "--live" in line


def test_an_out_holding_a_run_is_refused_without_force(capsys: pytest.CaptureFixture[str], tiny: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert main(["run", str(tiny), "-o", str(out), "-q"]) == 0
    before = (out / "tasks.csv").read_bytes()
    capsys.readouterr()
    assert main(["run", str(tiny), "-o", str(out), "-q", "--policy", "worst_fit"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out: {out} holds a run already; give --force to replace it (or another --out)\n"
    assert (out / "tasks.csv").read_bytes() == before and read_run(out)["policy"] == "first_fit"
    assert main(["run", str(tiny), "-o", str(out), "-q", "--policy", "worst_fit", "--force"]) == 0
    assert read_run(out)["policy"] == "worst_fit"
    assert f"replacing the run in {out}" in capsys.readouterr().err


def test_the_default_directory_is_replaced_with_a_note(capsys: pytest.CaptureFixture[str], tiny: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(tiny), "-q"]) == 0
    out = capsys.readouterr().out.strip().removeprefix("run directory: ")
    assert is_complete(tmp_path / out)
    assert main(["run", str(tiny), "-q"]) == 0  # the same scenario, policy and seed: the same run again
    assert f"replacing the run in {out}" in capsys.readouterr().err


def test_a_testbed_directory_stays_out_of_git(tmp_path: Path) -> None:
    from rpiaas.testbed.state import keep_out_of_git

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    root = tmp_path / "lab" / ".rpiaas-testbed"
    (root / "tokens").mkdir(parents=True)
    (root / "tokens" / "node1").write_text("secret")
    keep_out_of_git(root)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    listed = subprocess.run(["git", "-C", str(tmp_path), "ls-files", "--cached"], check=True,
                            capture_output=True, text=True).stdout
    assert listed == ""
