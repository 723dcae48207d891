"""One BLAS thread for the rpiaas command and the writer process it starts, unless the
environment says how many (rpiaas.threads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rpiaas.rundir.writer import RunWriter
from rpiaas.threads import BLAS_THREADS, one_blas_thread


def test_one_thread_is_asked_for_where_the_environment_names_no_number() -> None:
    env = one_blas_thread({"OMP_NUM_THREADS": "4", "PATH": "/bin"})
    assert env == {"OMP_NUM_THREADS": "4", "PATH": "/bin", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_the_command_asks_before_numpy_is_imported(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in BLAS_THREADS}
    code = ("import os, sys\nfrom rpiaas.cli import main\nassert 'numpy' not in sys.modules\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print([os.environ.get(n) for n in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['1', '1', '1']"
    env["OPENBLAS_NUM_THREADS"] = "2"  # the user's choice stands
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['2', '1', '1']"


def _children_environ() -> list[dict[str, str]]:
    """The environments of this process's child processes (Linux /proc)."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update((task / "children").read_text().split())
    envs = []
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # (it ended meanwhile)
            continue
        envs.append(dict(x.split("=", 1) for x in raw.decode(errors="replace").split("\0") if "=" in x))
    return envs


def test_the_writer_process_starts_with_one_blas_thread(tmp_path: Path) -> None:
    before = {k: os.environ.pop(k) for k in BLAS_THREADS if k in os.environ}
    try:
        writer = RunWriter(tmp_path / "run", background=True)
        writer.hand_over()
        try:
            envs = [e for e in _children_environ() if "OPENBLAS_NUM_THREADS" in e]
            assert envs and all(e["OPENBLAS_NUM_THREADS"] == "1" and e["OMP_NUM_THREADS"] == "1" for e in envs)
            assert writer.handed_over
        finally:
            writer.abort()
    finally:
        os.environ.update(before)
