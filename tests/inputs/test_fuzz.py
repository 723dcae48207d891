"""Mangled input files never crash, hang or balloon: they load or are refused in one line.

A seeded mutator takes every scenario in ``scenarios/`` and every cluster
file, and truncates them, flips bytes, nests brackets hundreds deep, adds
alias bombs, puts huge numbers and wrong types where values were.  Each
result goes through :func:`load_scenario` (or :func:`load_cluster`) in
process under a time limit, and a sample of them through ``rpiaas validate``
as a subprocess whose peak memory is measured.  Anything but a loaded
scenario or an :class:`InputError` fails the test.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario, parse_overrides

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
CLUSTERS = sorted((ROOT / "scenarios" / "clusters").glob("*"))
PER_FILE = 40
SECONDS = 5.0  # no input may take longer than this to load or be refused
SUBPROCESS_RSS_MB = 250

_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?(?![\w.])")
_VALUE = re.compile(r"(:\s+)([^\s{\[#][^\n,}\]#]*)")
_WRONG = ["[]", "{}", "abc", "true", "null", "~", "''", "[1, [2, [3]]]", "{a: {b: c}}", "-1", "0",
          "!!binary aGVsbG8=", "!!python/object:os.system x", "*nowhere", "&x", "|\n  text"]
_HUGE = ["1e308", "-1e308", "1e400", "1e-320", "9" * 5000, "0x" + "f" * 40, "nan", ".inf", "-.inf",
         "1_000_000_000_000", "1e12", "99999999999999999999"]


def _bomb(levels: int) -> str:
    out = ['\nb0: &b0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels + 1):
        out.append(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]")
    return "\n".join(out) + "\n"


def mutations(text: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    """``PER_FILE`` mangled versions of ``text``, each with the name of what was done."""
    kinds: list[tuple[str, Callable[[str], str]]] = [
        ("truncate", lambda t: t[:rng.randrange(len(t))]),
        ("flip", lambda t: "".join(
            chr(rng.randrange(256)) if rng.random() < 0.01 else c for c in t)),
        ("one byte", lambda t: (lambda i: t[:i] + rng.choice(":-{}[],&*!|>'\"#\t\n\\%@`") + t[i + 1:])(
            rng.randrange(len(t)))),
        ("deep", lambda t: (lambda i, n: t[:i] + "[" * n + "1" + "]" * n + t[i:])(
            rng.randrange(len(t)), rng.choice([60, 500, 5000]))),
        ("deep block", lambda t: t + "x:\n" + "".join(" " * k + "- \n" for k in range(rng.choice([60, 400])))),
        ("bomb", lambda t: t + _bomb(rng.choice([5, 9]))),
        ("huge", lambda t: _NUMBER.sub(lambda m: rng.choice(_HUGE) if rng.random() < 0.3 else m.group(0), t)),
        ("wrong type", lambda t: _VALUE.sub(
            lambda m: m.group(1) + (rng.choice(_WRONG) if rng.random() < 0.2 else m.group(2)), t)),
        ("lines", lambda t: "\n".join(
            ln for ln in rng.sample(t.splitlines(), len(t.splitlines())))),
        ("duplicate", lambda t: t + "\n" + t),
        ("cycle", lambda t: t + "\nz: &z [*z]\n"),
        ("nul", lambda t: t.replace("\n", "\n\x00", 1)),
    ]
    for i in range(PER_FILE):
        name, mutate = kinds[i % len(kinds)]
        yield name, mutate(text) if text else text


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


def _load(path: Path) -> object:
    if path.parent.name == "clusters":
        return load_cluster(path)
    return load_scenario(path)


def _cases(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    rng = random.Random(20240611)
    for original in [*SCENARIOS, *CLUSTERS]:
        if original.suffix not in (".yaml", ".json"):
            continue
        text = original.read_text()
        folder = tmp_path / original.parent.name  # cluster files stay "clusters/..."
        folder.mkdir(exist_ok=True)
        # files a scenario names (clusters, traces) resolve as they do beside the original
        for extra in ("clusters", "traces"):
            if (original.parent / extra).is_dir() and not (folder / extra).exists():
                (folder / extra).symlink_to(original.parent / extra)
        for j, (kind, mangled) in enumerate(mutations(text, rng)):
            f = folder / f"{original.stem}-{j}{original.suffix}"
            f.write_bytes(mangled.encode("utf-8", "surrogateescape"))
            yield f"{original.name} {kind} #{j}", f


def test_mangled_files_load_or_are_refused_in_one_line(tmp_path: Path) -> None:
    tried = refused = 0
    worst = (0.0, "")
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for label, f in _cases(tmp_path):
            tried += 1
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, SECONDS)
            try:
                _load(f)
            except InputError as e:
                refused += 1
                message = str(e)
                assert "\n" not in message.rstrip("\n") or "not valid YAML" in message, (label, message)
                assert len(message) < 1000, (label, message[:200])
            except _Hang:
                pytest.fail(f"{label}: no answer within {SECONDS} s")
            except Exception as e:  # anything else is a crash
                pytest.fail(f"{label}: {type(e).__name__}: {e}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            took = time.perf_counter() - t0
            worst = max(worst, (took, label))
    finally:
        signal.signal(signal.SIGALRM, previous)
    print(f"\nfuzz: {tried} mangled files, {refused} refused as InputError, "
          f"{tried - refused} loaded; slowest {worst[0]:.2f} s ({worst[1]})")
    assert tried >= PER_FILE * (len(SCENARIOS) + 1) and refused > tried // 2


def test_mangled_set_values_are_read_or_refused(tmp_path: Path) -> None:
    rng = random.Random(7)
    keys = ["name", "seed", "horizon_s", "sample_interval_s", "cluster.clusters.0.count",
            "workload.generator.count", "policy", "queue", "policy.params.x", "a.b.c", "",
            "cluster.clusters.9.type", "workload.generator.arrival"]
    values = [*_WRONG, *_HUGE, "[" * 400, "{a: " * 100, "&a [*a]", _bomb(9).replace("\n", " "), "=", "a=b=c"]
    tried = refused = 0
    for _ in range(300):
        pair = f"{rng.choice(keys)}={rng.choice(values)}"
        tried += 1
        t0 = time.perf_counter()
        try:
            load_scenario(ROOT / "scenarios" / "quickstart.yaml", parse_overrides([pair]))
        except InputError as e:
            refused += 1
            assert "\n" not in str(e), (pair, str(e))
        assert time.perf_counter() - t0 < SECONDS, pair
    print(f"\nfuzz: {tried} mangled --set values, {refused} refused")
    assert refused > 0


def _validate(path: Path) -> tuple[int, str, float, float]:
    """``rpiaas validate path`` as a process: exit code, stderr, seconds, peak RSS in MB."""
    err_file = path.with_name(path.name + ".err")
    rss_file = path.with_name(path.name + ".rss")
    t0 = time.perf_counter()
    with err_file.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _MEASURED, str(rss_file), "validate", str(path)],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"rpiaas validate {path.name}: no answer in 30 s")
    took = time.perf_counter() - t0
    return code, err_file.read_text(), took, float(rss_file.read_text()) / 1024


# ``rpiaas`` that writes its peak resident memory (VmHWM, kB) to argv[1] as it exits: the
# rusage of a child counts the memory of the parent it was forked from until its exec
_MEASURED = """
import atexit, sys
out = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as f:
        kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(kb)
atexit.register(peak)
from rpiaas.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("kind", ["truncate", "flip", "deep", "deep block", "bomb", "huge",
                                  "wrong type", "nul"])
def test_mangled_files_through_the_command(tmp_path: Path, kind: str) -> None:
    label, f = next((label, f) for label, f in _cases(tmp_path) if f" {kind} #" in label)
    code, err, took, rss_mb = _validate(f)
    assert code in (0, 2) and "Traceback" not in err, (label, err)
    assert code == 0 or (err.startswith("error: ") and err.count("\n") == 1), (label, err)
    assert took < 15 and rss_mb < SUBPROCESS_RSS_MB, (label, took, rss_mb)


@pytest.mark.parametrize("what", ["bomb", "deep", "big"])
def test_the_worst_inputs_are_refused_fast_and_small(tmp_path: Path, what: str) -> None:
    f = tmp_path / f"{what}.yaml"
    if what == "bomb":
        f.write_text("name: x\n" + _bomb(9))
    elif what == "deep":
        f.write_text("name: x\ncluster: " + "[" * 100_000 + "]" * 100_000 + "\n")
    else:
        with f.open("w") as out:
            out.write(("a" * 1000 + "\n") * 50_000)  # 50 MB
    code, err, took, rss_mb = _validate(f)
    assert code == 2 and err.count("\n") == 1 and "limit" in err, err
    print(f"\n{what}: refused in {took:.2f} s, peak RSS {rss_mb:.0f} MB: {err.strip()}")
    assert took < 10 and rss_mb < 150, (took, rss_mb)


def test_the_fuzz_covers_every_scenario() -> None:
    assert len(SCENARIOS) >= 5 and CLUSTERS
    assert os.path.basename(str(SCENARIOS[0])).endswith(".yaml")
