"""What a container costs a task: the same ``cpu`` work bare and in a container, on the local testbed.

Usage::

    .venv/bin/python benchmarks/container_overhead.py                   # 3 pairs of 3 CPU s each
    .venv/bin/python benchmarks/container_overhead.py --repeats 5 --work-core-s 5 --json out.json

The original RPiaaS paper measured that containers cost its Pis a "minimal" overhead.  This
starts a one-node local testbed (``testbed up --local 1``: a master and an agent on
loopback, commands allowed) and asks its agent, in turn, for

- **bare**: a ``command`` task running the reference compute kernel (the agent's
  ``workload.py cpu --work-core-s W``) with the system's Python, and
- **container**: a ``container`` task running the very same file with the very same
  Python, in an image built here from that Python and its standard library
  (``podman import``; no registry needed), held to 1 core and 256 MB (podman + runc).

Both run one core's worth of the same kernel steps, one after the other (bare, container,
bare, ...), ``--repeats`` times.  For each it reads the agent's task document: the wall time
(``ended_s - started_s``; for the container, from its engine's ``run`` to its exit: the
container's creation and removal included) and ``cpu_s`` (the worker's rusage bare, the
task's cgroup in the container).  It prints each pair's ratio container / bare, their mean and
spread (min to max, standard deviation).  Each pair is followed by a pair of runs of the same
interpreter doing nothing (``python3 -I -c pass``), bare and in the container: the difference of
their wall times is the container's start-up and removal.

A shared machine's other load changes both runs of a pair alike only if it stays steady:
read the spread before the mean.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "agent")]

from rpiaas_agent import workload  # noqa: E402

from rpiaas.testbed.local import start_local_testbed  # noqa: E402
from rpiaas.testbed.state import TOKENS_DIR  # noqa: E402

IMAGE = "localhost/rpiaas/python-kernel:latest"
PYTHON = "/usr/bin/python3"  # the system's: the same interpreter bare and in the image
SKIP = ("test", "site-packages", "dist-packages", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo")


def build_image(python: str) -> tuple[float, int]:
    """An image holding ``python``, its libraries, its standard library and the kernel; the
    seconds the build took and the image's size in bytes."""
    t0 = time.monotonic()
    exe = os.path.realpath(python)
    stdlib = subprocess.run([exe, "-I", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    # the libraries of the interpreter and of its extension modules (ctypes needs libffi, ...)
    dynload = [str(p) for p in Path(stdlib, "lib-dynload").glob("*.so")]
    lines = subprocess.run(["ldd", exe, *dynload], capture_output=True, text=True, check=False).stdout
    libs = sorted({p.split("=>")[-1].split("(")[0].strip() for p in lines.splitlines() if "=>" in p or
                   p.strip().startswith("/")} - {""})
    libs = [p for p in libs if p.startswith("/") and os.path.exists(p)]
    with tempfile.TemporaryDirectory() as root:
        r = Path(root)

        def put(src: str) -> None:
            dst = r / src.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)

        for path in (exe, *libs):
            put(path)
        (r / "usr/bin").mkdir(parents=True, exist_ok=True)
        if not (r / "usr/bin/python3").exists():
            os.symlink(exe, r / "usr/bin/python3")
        shutil.copytree(stdlib, r / stdlib.lstrip("/"), symlinks=True,
                        ignore=lambda d, names: [n for n in names if n in SKIP])
        (r / "opt/rpiaas").mkdir(parents=True)
        shutil.copy2(workload.__file__, r / "opt/rpiaas/workload.py")
        (r / "tmp").mkdir()
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["podman", "import", "--change", "ENV PATH=/usr/bin", "-", IMAGE], stdin=tar.stdout,
                       capture_output=True, check=True, timeout=600)
        tar.wait()
    build_s = time.monotonic() - t0
    size = int(subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE],
                              capture_output=True, text=True, check=True).stdout.strip())
    return build_s, size


def call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def run_task(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    call(url, token, "POST", "/tasks", body)
    while True:
        doc: dict[str, Any] = call(url, token, "GET", f"/tasks/{body['id']}")
        if doc["state"] != "running":
            if doc["state"] != "completed":
                raise SystemExit(f"task {body['id']} {doc['state']}: {doc.get('error')}")
            return doc
        time.sleep(0.1)


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="pairs of runs (at least 3)")
    p.add_argument("--work-core-s", type=float, default=3.0, help="each run's work, in reference CPU s")
    p.add_argument("--python", default=PYTHON, help="the interpreter, bare and in the image")
    p.add_argument("--json", metavar="FILE", help="write the figures there too")
    args = p.parse_args()
    if args.repeats < 3:
        p.error("--repeats: at least 3, for a spread")
    if shutil.which("podman") is None or shutil.which("runc") is None:
        p.error("needs podman and runc (apt-get install podman runc)")
    build_s, size = build_image(args.python)
    print(f"image {IMAGE}: {size / 1e6:.1f} MB, built in {build_s:.1f} s")
    kernel = ["-I", "cpu", "--work-core-s", repr(args.work_core_s)]
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "container": []}
    startups: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, start_local_testbed(Path(tmp) / "tb", 1, allow_commands=True) as tb:
        name, agent = next(iter(tb.agents.items()))
        token = (tb.dir / TOKENS_DIR / f"{name}.token").read_text().strip()
        for i in range(args.repeats):
            common = {"cores": 1, "mem_mb": 256}
            bare = run_task(agent.url, token, {"id": f"bare{i}", "kind": "command", **common,
                                               "argv": [args.python, kernel[0], workload.__file__, *kernel[1:]]})
            boxed = run_task(agent.url, token, {"id": f"box{i}", "kind": "container", "image": IMAGE, **common,
                                                "argv": ["python3", kernel[0], "/opt/rpiaas/workload.py",
                                                         *kernel[1:]]})
            # the start-up alone: the same interpreter doing nothing
            bare_up = run_task(agent.url, token, {"id": f"bare-up{i}", "kind": "command", **common,
                                                  "argv": [args.python, "-I", "-c", "pass"]})
            box_up = run_task(agent.url, token, {"id": f"box-up{i}", "kind": "container", "image": IMAGE, **common,
                                                 "argv": ["python3", "-I", "-c", "pass"]})
            startups.append((box_up["ended_s"] - box_up["started_s"]) - (bare_up["ended_s"] - bare_up["started_s"]))
            for kind, doc in (("bare", bare), ("container", boxed)):
                runs[kind].append({"wall_s": doc["ended_s"] - doc["started_s"], "cpu_s": doc["cpu_s"],
                                   "pull_s": doc.get("pull_s")})
            print(f"pair {i}: bare {runs['bare'][-1]['wall_s']:.3f} s ({bare['cpu_s']} CPU s), "
                  f"container {runs['container'][-1]['wall_s']:.3f} s ({boxed['cpu_s']} CPU s)")
    wall = [c["wall_s"] / b["wall_s"] for b, c in zip(runs["bare"], runs["container"], strict=True)]
    cpu = [c["cpu_s"] / b["cpu_s"] for b, c in zip(runs["bare"], runs["container"], strict=True)]
    result = {"work_core_s": args.work_core_s, "repeats": args.repeats, "image": IMAGE, "image_bytes": size,
              "image_build_s": build_s, "wall_ratio": spread(wall), "cpu_ratio": spread(cpu),
              "startup_s": spread(startups), "runs": runs, "measured": True}
    for key, label in (("wall_ratio", "wall time, container / bare"), ("cpu_ratio", "CPU s, container / bare"),
                       ("startup_s", "container's start-up and removal, over a bare start (s)")):
        s = result[key]
        print(f"{label}: mean {s['mean']:.3f}, min {s['min']:.3f}, max {s['max']:.3f}, stdev {s['stdev']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
