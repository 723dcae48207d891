"""Reading a run directory: ``run.json``, ``tasks.csv`` and ``nodes.csv`` into memory.

:func:`read_run` reads ``run.json``; :func:`load_run` reads a whole run as a
:class:`Run`, its task table as numpy arrays sorted by task id (a million
tasks in a few seconds: the csv rows are converted a chunk at a time), and
its node series.  Bad input (a missing or corrupt run directory) raises
:class:`RunFileError`, one line naming the file and, where there is one,
the line.

The task and node tables are CSV (``tasks.csv``, ``nodes.csv``) or, in a run
written with ``--format parquet``, Parquet (``tasks.parquet``,
``nodes.parquet``, see :mod:`.parquet`); :func:`table_file` says which file
holds a table, and every reader of a run directory goes through it.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .format import NODE_COLUMNS, PART_COLUMNS, TASK_BASE_COLUMNS, TASK_STATES

__all__ = ["COMPLETED", "NodeSeries", "Run", "RunFileError", "is_complete", "load_run", "read_run",
           "read_timing", "table_file", "tables_format"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_CHUNK = 100_000  # csv rows parsed per numpy conversion
COMPLETED = TASK_STATES.index("completed")  # the code of a completed task in ``Run.state``


class RunFileError(ValueError):
    """A run directory, or one of its files, is missing or unreadable; the message names it."""


@dataclass
class NodeSeries:
    """``nodes.csv`` as arrays: one entry per row, ``node`` as an index into ``Run.node_names``.

    ``utilization`` is the allocated share of the node's cores, ``cpu_utilization`` the
    CPU share (measured live); ``power_measured`` marks the rows whose power a meter gave.
    A table written before ``cpu_utilization`` existed reads it as ``utilization`` (which
    was the CPU share on the testbed then) and no power as measured.
    """

    time_s: Floats
    node: Ints
    utilization: Floats
    power_w: Floats
    on: npt.NDArray[np.bool_]
    cpu_utilization: Floats = field(default_factory=lambda: np.zeros(0))
    power_measured: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    booting: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if self.cpu_utilization.size != self.utilization.size:
            self.cpu_utilization = self.utilization
        if self.power_measured.size != self.utilization.size:
            self.power_measured = np.zeros(self.utilization.size, dtype=bool)
        if self.booting.size != self.utilization.size:
            self.booting = np.zeros(self.utilization.size, dtype=bool)


@dataclass
class Run:
    """A run directory in memory: ``run.json`` and ``tasks.csv`` as arrays sorted by task id.

    Times are ``nan`` where a task never reached that point; ``node`` is -1
    where it never ran.  ``state`` indexes
    :data:`~rpiaas.rundir.format.TASK_STATES` (``COMPLETED`` is its code for
    ``completed``); ``label`` names the run in a comparison.
    """

    path: Path
    record: dict[str, Any]
    task_id: Ints
    arrival_s: Floats
    start_s: Floats
    end_s: Floats
    wait_s: Floats
    response_s: Floats
    node: Ints
    state: Ints
    cores: Ints
    work_core_s: Floats
    node_names: list[str]
    series: NodeSeries | None = None
    label: str = ""
    kind: Ints | None = None  # index into ``kind_names``
    kind_names: list[str] = field(default_factory=list)
    # seconds each task's image took to pull (NaN: none pulled); None: a run without the column
    pull_s: Floats | None = None
    _types: dict[str, str] = field(default_factory=dict)
    _parts: dict[int, list[tuple[str, int]]] | None = None

    @property
    def completed(self) -> npt.NDArray[np.bool_]:
        done: npt.NDArray[np.bool_] = self.state == COMPLETED
        return done

    @property
    def node_types(self) -> dict[str, str]:
        """Node name -> node type name, from ``run.json``."""
        if not self._types:
            for n in self.record.get("nodes") or []:
                if isinstance(n, dict) and "node" in n:
                    self._types[str(n["node"])] = str(n.get("type", ""))
        return self._types

    def parts(self) -> dict[int, list[tuple[str, int]]]:
        """Every job that spanned nodes: its parts' ``(node, cores)`` in rank order, from
        ``parts.csv`` (none in a run that has no such file: runs before parallel jobs)."""
        if self._parts is None:
            self._parts = read_parts(self.path)
        return self._parts

    def single_node(self) -> npt.NDArray[np.bool_]:
        """Mask of the tasks that ran on one node (not a job over several)."""
        jobs = self.parts()
        if not jobs:
            return np.ones(self.task_id.shape, dtype=bool)
        out: npt.NDArray[np.bool_] = ~np.isin(self.task_id, np.fromiter(jobs, dtype=np.int64))
        return out


def read_parts(path: str | Path) -> dict[int, list[tuple[str, int]]]:
    """``parts.csv`` of the run directory ``path`` as task id -> ``(node, cores)`` by rank;
    ``{}`` without the file; :class:`RunFileError` naming the file and line of a bad row."""
    f = Path(path) / "parts.csv"
    if not f.exists():
        return {}
    out: dict[int, list[tuple[str, int]]] = {}
    for line, chunk in _rows(f, PART_COLUMNS):
        for i, row in enumerate(chunk):
            try:
                tid, rank, cores = int(row[0]), int(row[1]), int(row[3])
            except ValueError:
                raise RunFileError(f"{f}:{line + i}: task_id, rank and cores must be integers") from None
            parts = out.setdefault(tid, [])
            if rank != len(parts):
                raise RunFileError(f"{f}:{line + i}: rank: expected {len(parts)} for task {tid}, got {rank}")
            parts.append((row[2], cores))
    return out


def load_run(path: str | Path, series: bool = True) -> Run:
    """Read a run directory (``series``: also ``nodes.csv``); :class:`RunFileError` if unreadable."""
    p = Path(path)
    if not p.exists():
        raise RunFileError(f"{p}: no such run directory")
    if not p.is_dir():
        raise RunFileError(f"{p}: not a directory (expected a run directory)")
    record = read_run(p)
    tasks = table_file(p, "tasks", record)
    cols = _read_tasks(tasks) if tasks.suffix == ".csv" else _read_tasks_parquet(tasks)
    run = Run(p, record, *cols[:11])
    run.kind, run.kind_names = cols[11], cols[12]
    run.pull_s = cols[13]
    if series:
        nodes = table_file(p, "nodes", record)
        run.series = (_read_series(nodes, run.node_names) if nodes.suffix == ".csv"
                      else _read_series_parquet(nodes, run.node_names))
    return run


def tables_format(path: str | Path, record: dict[str, Any] | None = None) -> str:
    """``"csv"`` or ``"parquet"``: how the run directory ``path`` holds its tables
    (``run.json``'s ``tables``; CSV when it says nothing)."""
    rec = read_run(path) if record is None else record
    fmt = rec.get("tables", "csv")
    if fmt not in ("csv", "parquet"):
        raise RunFileError(f"{Path(path) / 'run.json'}: tables: expected 'csv' or 'parquet', got {fmt!r}")
    return str(fmt)


def table_file(path: str | Path, name: str, record: dict[str, Any] | None = None) -> Path:
    """The file of the table ``name`` (``tasks`` or ``nodes``) of the run directory ``path``."""
    return Path(path) / f"{name}.{tables_format(path, record)}"


def read_run(path: str | Path) -> dict[str, Any]:
    """``run.json`` of the run directory ``path``; :class:`RunFileError` if missing or not a run record."""
    f = Path(path) / "run.json"
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{f}: no such file (not a run directory?)") from None
    except json.JSONDecodeError as e:
        raise RunFileError(f"{f}:{e.lineno}: not valid JSON: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunFileError(f"{f}: cannot read it: {e}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{f}: expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("summary"), dict):
        raise RunFileError(f"{f}: no 'summary' object (not a run record?)")
    return data


def _rows(f: Path, columns: Sequence[str], header_out: list[str] | None = None,
          ) -> Iterator[tuple[int, list[list[str]]]]:
    """Chunks of rows of a CSV file whose header must start with ``columns``; (first line, rows).
    ``header_out`` is given the whole header."""
    try:
        handle = open(f, newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise RunFileError(f"{f}: no such file") from None
    except OSError as e:
        raise RunFileError(f"{f}: cannot read it: {e}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise RunFileError(f"{f}: empty file (expected a header line)")
            if tuple(header[: len(columns)]) != tuple(columns):
                raise RunFileError(f"{f}:1: unexpected header (expected {','.join(columns)})")
            width = len(header)
            if header_out is not None:
                header_out[:] = header
            line = 2
            while True:
                chunk = list(itertools.islice(reader, _CHUNK))
                if not chunk:
                    return
                if len(set(map(len, chunk))) != 1 or len(chunk[0]) != width:
                    i, row = next((i, r) for i, r in enumerate(chunk) if len(r) != width)
                    raise RunFileError(f"{f}:{line + i}: expected {width} fields, got {len(row)}")
                yield line, chunk
                line += len(chunk)
        except csv.Error as e:
            raise RunFileError(f"{f}:{reader.line_num}: not valid CSV: {e}") from None
        except UnicodeDecodeError as e:
            raise RunFileError(f"{f}: not UTF-8 text: {e}") from None


def _floats(f: Path, line: int, name: str, values: Sequence[str]) -> Floats:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        pass  # empty fields (times a task never reached), or not numbers
    try:
        return np.array([v or "nan" for v in values], dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v or "nan")
            except ValueError:
                raise RunFileError(f"{f}:{line + i}: {name}: not a number: {v!r}") from None
        raise  # pragma: no cover


def _ints(f: Path, line: int, name: str, values: Sequence[str]) -> Ints:
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        for i, v in enumerate(values):
            if not v.strip().lstrip("-").isdigit():
                raise RunFileError(f"{f}:{line + i}: {name}: not an integer: {v!r}") from None
        raise  # pragma: no cover


def _codes(values: Iterable[str], codes: dict[str, int]) -> Ints:
    """Small integer codes for names ('' -> -1), extending ``codes`` as new names appear."""
    try:  # every name known already: the common case after the first rows
        return np.fromiter(map(codes.__getitem__, values), dtype=np.int64)
    except KeyError:
        pass
    get = codes.get
    out = []
    for v in values:
        c = get(v)
        if c is None:
            c = -1 if not v else codes.setdefault(v, len(codes))
        out.append(c)
    return np.array(out, dtype=np.int64)


def _read_tasks(f: Path) -> tuple[Any, ...]:
    idx = {c: i for i, c in enumerate(TASK_BASE_COLUMNS)}
    floats = ("arrival_s", "start_s", "end_s", "wait_s", "response_s", "work_core_s")
    parts: dict[str, list[Any]] = {k: [] for k in (*floats, "task_id", "node", "state", "cores",
                                                    "kind")}
    nodes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    state_codes = {s: i for i, s in enumerate(TASK_STATES)}
    header: list[str] = []
    for line, chunk in _rows(f, TASK_BASE_COLUMNS, header):
        cols = list(zip(*chunk, strict=True))
        if "pull_s" in header:  # (a later column: older runs have none)
            parts.setdefault("pull_s", []).append(_floats(f, line, "pull_s", cols[header.index("pull_s")]))
        for name in floats:
            parts[name].append(_floats(f, line, name, cols[idx[name]]))
        parts["task_id"].append(_ints(f, line, "task_id", cols[idx["task_id"]]))
        parts["cores"].append(_ints(f, line, "cores", cols[idx["cores"]]))
        parts["node"].append(_codes(cols[idx["node"]], nodes))
        parts["kind"].append(_codes(cols[idx["kind"]], kinds))
        states = cols[idx["state"]]
        bad = set(states) - state_codes.keys()
        if not bad:
            parts["state"].append(np.fromiter(map(state_codes.__getitem__, states), dtype=np.int64))
            continue
        i = next(i for i, s in enumerate(states) if s in bad)
        raise RunFileError(f"{f}:{line + i}: state: unknown task state {states[i]!r}")
    arrays = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64 if k in (
        "task_id", "node", "state", "cores", "kind") else np.float64)) for k, v in parts.items()}
    return _sorted(f, arrays, nodes, kinds)


def _sorted(f: Path, arrays: dict[str, Any], nodes: dict[str, int],
            kinds: dict[str, int]) -> tuple[Any, ...]:
    """The task columns sorted by task id (ids must be unique), node and kind names."""
    order = np.argsort(arrays["task_id"], kind="stable")
    ids = arrays["task_id"][order]
    if ids.size > 1:
        dup = np.flatnonzero(ids[1:] == ids[:-1])
        if dup.size:
            raise RunFileError(f"{f}: task {int(ids[dup[0]])} has more than one row")
    names = [""] * len(nodes)
    for name, code in nodes.items():
        names[code] = name
    kind_names = [""] * len(kinds)
    for name, code in kinds.items():
        kind_names[code] = name
    a = {k: v[order] for k, v in arrays.items()}
    return (a["task_id"], a["arrival_s"], a["start_s"], a["end_s"], a["wait_s"], a["response_s"],
            a["node"], a["state"], a["cores"], a["work_core_s"], names, a["kind"], kind_names, a.get("pull_s"))


def _parquet(f: Path, columns: tuple[str, ...]) -> dict[str, Any]:
    from .parquet import read_columns

    if not f.exists():
        raise RunFileError(f"{f}: no such file")
    try:
        return read_columns(f, columns)
    except ModuleNotFoundError as e:
        raise RunFileError(f"{f}: {e}") from None
    except Exception as e:  # pyarrow's own errors: a corrupt or foreign file
        raise RunFileError(f"{f}: not a readable Parquet table: {' '.join(str(e).split())[:200]}"
                           ) from None


def _read_tasks_parquet(f: Path) -> tuple[Any, ...]:
    cols = _parquet(f, ("task_id", "arrival_s", "start_s", "end_s", "wait_s", "response_s",
                        "work_core_s", "cores", "node", "state", "kind"))
    nodes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    cols["node"] = _codes(cols["node"], nodes)
    cols["kind"] = _codes(cols["kind"], kinds)
    state_codes = {s: i for i, s in enumerate(TASK_STATES)}
    bad = set(cols["state"]) - state_codes.keys()
    if bad:
        raise RunFileError(f"{f}: state: unknown task state {sorted(bad)[0]!r}")
    cols["state"] = np.fromiter(map(state_codes.__getitem__, cols["state"]), dtype=np.int64,
                                count=len(cols["state"]))
    return _sorted(f, cols, nodes, kinds)


def _read_series_parquet(f: Path, names: list[str]) -> NodeSeries | None:
    if not f.exists():
        return None
    try:
        cols = _parquet(f, ("time_s", "node", "utilization", "power_w", "state", "cpu_utilization",
                            "power_source"))
    except RunFileError:  # a table from before the two columns
        cols = _parquet(f, ("time_s", "node", "utilization", "power_w", "state"))
    codes = {n: i for i, n in enumerate(names)}
    node = _codes(cols["node"], codes)
    names.extend([""] * (len(codes) - len(names)))
    for name, code in codes.items():
        names[code] = name
    states = np.array(cols["state"], dtype=object)
    return NodeSeries(cols["time_s"], node, cols["utilization"], cols["power_w"], states == "on",
                      cols.get("cpu_utilization", np.zeros(0)),
                      np.array(cols.get("power_source", []), dtype=object) == "measured",
                      states == "booting")


def _read_series(f: Path, names: list[str]) -> NodeSeries | None:
    if not f.exists():
        return None
    header: list[str] = []
    codes = {n: i for i, n in enumerate(names)}
    t: list[Floats] = []
    node: list[Ints] = []
    util: list[Floats] = []
    cpu: list[Floats] = []
    power: list[Floats] = []
    on: list[npt.NDArray[np.bool_]] = []
    measured: list[npt.NDArray[np.bool_]] = []
    booting: list[npt.NDArray[np.bool_]] = []
    # a table from before cpu_utilization and power_source has the first nine columns only
    for line, chunk in _rows(f, NODE_COLUMNS[:9], header):
        idx = {c: i for i, c in enumerate(header)}
        cols = list(zip(*chunk, strict=True))
        t.append(_floats(f, line, "time_s", cols[idx["time_s"]]))
        node.append(_codes(cols[idx["node"]], codes))
        util.append(_floats(f, line, "utilization", cols[idx["utilization"]]))
        power.append(_floats(f, line, "power_w", cols[idx["power_w"]]))
        state = np.array(cols[idx["state"]], dtype=object)
        on.append(state == "on")
        booting.append(state == "booting")
        if "cpu_utilization" in idx:
            cpu.append(_floats(f, line, "cpu_utilization", cols[idx["cpu_utilization"]]))
        if "power_source" in idx:
            measured.append(np.array(cols[idx["power_source"]], dtype=object) == "measured")
    names.extend([""] * (len(codes) - len(names)))
    for name, code in codes.items():
        names[code] = name
    if not t:
        return NodeSeries(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0),
                          np.zeros(0, dtype=bool))
    return NodeSeries(np.concatenate(t), np.concatenate(node), np.concatenate(util),
                      np.concatenate(power), np.concatenate(on),
                      np.concatenate(cpu) if cpu else np.zeros(0),
                      np.concatenate(measured) if measured else np.zeros(0, dtype=bool),
                      np.concatenate(booting))


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a complete run: a run directory appears only when its run
    completes (:class:`~rpiaas.rundir.writer.RunWriter`), so its ``run.json`` is the mark."""
    return (Path(path) / "run.json").exists()


def read_timing(path: str | Path) -> dict[str, Any] | None:
    """``timing.json`` of a run directory (wall-clock facts), or ``None`` if absent or unreadable."""
    try:
        data = json.loads((Path(path) / "timing.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
