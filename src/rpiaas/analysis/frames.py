"""Run directories as pandas DataFrames: the notebook entry point.

``rpiaas.run(scenario, ...)`` simulates a scenario and ``rpiaas.load_run(path)``
opens a run directory; both return a :class:`RunFrames`, whose tables
(``tasks``, ``nodes``, ``events``, ``decisions``) are read on first access,
typed (times as float seconds, ``node``/``state``/``kind`` categorical), from
CSV or Parquet alike.  pandas is the ``analysis`` extra and is imported only
here, so ``import rpiaas`` stays light.

The numpy reader of :mod:`rpiaas.rundir.reader` (``Run``) is what the
comparison, calibration and sweeps use; ``RunFrames`` is the pandas view of
the same directory for people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..rundir.format import TASK_STATES
from ..rundir.parquet import ANALYSIS_EXTRA, NODE_TYPES, TASK_TYPES
from ..rundir.reader import RunFileError, read_run, table_file

if TYPE_CHECKING:
    import pandas as pd

    from ..scenario import Scenario

__all__ = ["Comparison", "RunFrames", "load_run", "need_pandas", "run"]


def need_pandas() -> Any:
    """The ``pandas`` module, or ``ModuleNotFoundError`` with one line naming the extra."""
    try:
        import pandas
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"rpiaas's DataFrames need pandas, part of the analysis extra "
                                  f"({ANALYSIS_EXTRA})", name="pandas") from None
    return pandas


def run(scenario: str | Path | Scenario, *, policy: str | None = None, seed: int | None = None,
        overrides: dict[str, Any] | list[str] | tuple[str, ...] | None = None,
        out: str | Path | None = None, tables: str = "csv") -> RunFrames:
    """Simulate ``scenario`` (a file or a :class:`~rpiaas.Scenario`) and open its run directory.

    ``overrides`` are ``{"key.path": value}`` or ``"key.path=value"`` strings, as
    ``rpiaas run --set``; ``out`` defaults to ``runs/NAME-POLICY-sSEED``;
    ``tables="parquet"`` writes the tables as Parquet.
    """
    need_pandas()
    from ..scenario import Scenario, load_scenario, with_overrides
    from ..sim import simulate

    given = overrides or ()
    if isinstance(scenario, Scenario):
        sc = with_overrides(scenario, given, seed=seed, policy=policy) if (
            given or seed is not None or policy is not None) else scenario
    else:
        sc = load_scenario(scenario, given, seed=seed, policy=policy)
    target = Path(out) if out is not None else Path("runs") / f"{sc.name}-{sc.policy.name}-s{sc.seed}"
    _, path = simulate(sc, target, tables=tables)
    assert path is not None
    return RunFrames(path)


def load_run(path: str | Path) -> RunFrames:
    """Open the run directory ``path`` (reads ``run.json`` now, the tables on first access)."""
    need_pandas()
    return RunFrames(Path(path))


@dataclass
class Comparison:
    """Two runs compared: ``summary`` (one row per metric: a, b, diff, rel, where each side's
    figure comes from, ``source_a`` and ``source_b``, and ``verdict``, ``modelled on both
    sides`` where neither was measured), ``tasks`` (one row
    per task in both runs: responses, waits, nodes and the differences b − a) and ``result``,
    the full comparison of :func:`rpiaas.analysis.compare.compare_loaded`."""

    summary: pd.DataFrame
    tasks: pd.DataFrame
    result: dict[str, Any]


class RunFrames:
    """A run directory: ``path``, ``summary``, ``scenario`` and its tables as DataFrames."""

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise RunFileError(f"{path}: no such run directory")
        self.path = path
        self.record = read_run(path)

    def __repr__(self) -> str:
        return (f"RunFrames({str(self.path)!r}: {self.record.get('name')}, policy "
                f"{self.record.get('policy')}, seed {self.record.get('seed')}, "
                f"{self.summary.get('tasks', '?')} tasks)")

    @property
    def summary(self) -> dict[str, Any]:
        """``run.json``'s summary metrics."""
        s: dict[str, Any] = self.record["summary"]
        return s

    @property
    def scenario(self) -> dict[str, Any]:
        """The scenario as the run read it (``run.json``'s ``scenario``)."""
        sc: dict[str, Any] = self.record.get("scenario") or {}
        return sc

    @property
    def tables(self) -> str:
        """``"csv"`` or ``"parquet"``: how the run stores its task and node tables."""
        return str(self.record.get("tables", "csv"))

    @cached_property
    def tasks(self) -> pd.DataFrame:
        """One row per task (``tasks.csv``), in the order tasks ended."""
        df = _read_table(table_file(self.path, "tasks", self.record), TASK_TYPES)
        df["state"] = df["state"].astype(
            need_pandas().CategoricalDtype(list(TASK_STATES)))
        return df

    @cached_property
    def nodes(self) -> pd.DataFrame:
        """The per-node series (``nodes.csv``)."""
        return _read_table(table_file(self.path, "nodes", self.record), NODE_TYPES)

    @cached_property
    def events(self) -> pd.DataFrame:
        """The event log (``events.jsonl``): ``time_s``, ``source`` (event or action), ``kind``
        (``arrive``, ``start``, ...), ``task``, ``node`` and the other fields; empty if not kept."""
        df = _read_jsonl(self.path / "events.jsonl")
        pd = need_pandas()
        if df.empty:
            return pd.DataFrame({"time_s": pd.Series(dtype="float64"),
                                 "source": pd.Categorical([]), "kind": pd.Categorical([]),
                                 "task": pd.Series(dtype="Int64"), "node": pd.Categorical([])})
        ev = df["ev"] if "ev" in df else pd.Series(None, index=df.index, dtype=object)
        act = df["act"] if "act" in df else pd.Series(None, index=df.index, dtype=object)
        df["source"] = pd.Categorical(ev.notna().map({True: "event", False: "action"}))
        df["kind"] = pd.Categorical(ev.fillna(act))
        df = df.drop(columns=[c for c in ("ev", "act") if c in df])
        return _typed_log(df)

    @cached_property
    def decisions(self) -> pd.DataFrame:
        """The decision trace (``decisions.jsonl``): ``time_s``, ``kind`` (``place``, ...),
        ``task``, ``node`` (the node chosen) and the rest; empty without ``decision_trace``."""
        df = _read_jsonl(self.path / "decisions.jsonl")
        pd = need_pandas()
        if df.empty:
            return pd.DataFrame({"time_s": pd.Series(dtype="float64"), "kind": pd.Categorical([]),
                                 "task": pd.Series(dtype="Int64"), "node": pd.Categorical([])})
        df = df.rename(columns={"decision": "kind", "chosen": "node"})
        df["kind"] = pd.Categorical(df["kind"])
        return _typed_log(df)

    def compare(self, other: RunFrames | str | Path) -> Comparison:
        """This run (a) against ``other`` (b): see :class:`Comparison`."""
        from ..rundir.reader import load_run as load_arrays
        from .compare import compare_loaded

        pd = need_pandas()
        b = other if isinstance(other, RunFrames) else RunFrames(Path(other))
        result = compare_loaded([load_arrays(self.path), load_arrays(b.path)])
        rows = {k: {"a": v["a"], "b": v["b"], "diff": v["diff"], "rel": v["rel"],
                    "source_a": v.get("source", {}).get("a"), "source_b": v.get("source", {}).get("b"),
                    "verdict": v.get("verdict")} for k, v in result["pairs"][0]["summary"].items()}
        summary = pd.DataFrame.from_dict(rows, orient="index")
        summary.index.name = "metric"
        cols = ["task_id", "state", "node", "wait_s", "response_s"]
        tasks = self.tasks[cols].merge(b.tasks[cols], on="task_id", suffixes=("_a", "_b"))
        for c in ("wait_s", "response_s"):
            tasks[f"{c}_diff"] = tasks[f"{c}_b"] - tasks[f"{c}_a"]
        tasks["same_node"] = tasks["node_a"].astype(object) == tasks["node_b"].astype(object)
        return Comparison(summary, tasks.sort_values("task_id", ignore_index=True), result)


def _read_table(f: Path, types: dict[str, str]) -> pd.DataFrame:
    pd = need_pandas()
    if not f.exists():
        raise RunFileError(f"{f}: no such file")
    names = [k for k, v in types.items() if v == "string"]
    try:
        if f.suffix == ".parquet":
            df = pd.read_parquet(f, columns=list(types))
        else:
            dtypes = {k: ("object" if v == "string" else v) for k, v in types.items()}
            try:
                import pyarrow  # noqa: F401 (the fast, multi-threaded parser when present)
                engine = "pyarrow"
            except ModuleNotFoundError:
                engine = "c"
            # only empty fields are missing ("nan" or "NA" would be a tenant's name)
            df = pd.read_csv(f, dtype=dtypes, keep_default_na=False, na_values=[""], engine=engine)
            if list(df.columns[: len(types)]) != list(types):
                raise RunFileError(f"{f}:1: unexpected header (expected {','.join(types)})")
            df = df[list(types)]
    except (ValueError, OSError) as e:
        if isinstance(e, RunFileError):
            raise
        raise RunFileError(f"{f}: cannot read it: {' '.join(str(e).split())[:200]}") from None
    for k in names:
        col = df[k].astype(object).fillna("").astype(str)
        if k == "node":  # a task that never ran has no node: missing, not a node named ""
            col = col.where(col != "")
        df[k] = col.astype("category")
    for k, v in types.items():
        if v != "string":
            df[k] = df[k].astype(v)
    return df


def _read_jsonl(f: Path) -> pd.DataFrame:
    pd = need_pandas()
    if not f.exists():
        return pd.DataFrame()
    rows = []
    with open(f, encoding="utf-8") as handle:
        for i, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise RunFileError(f"{f}:{i}: not valid JSON: {e.msg}") from None
    return pd.DataFrame.from_records(rows)


def _typed_log(df: pd.DataFrame) -> pd.DataFrame:
    pd = need_pandas()
    df = df.rename(columns={"t": "time_s"})
    df["time_s"] = df["time_s"].astype("float64")
    df["task"] = (df["task"] if "task" in df else pd.Series(None, index=df.index)).astype("Int64")
    df["node"] = pd.Categorical(df["node"] if "node" in df else [None] * len(df))
    first = [c for c in ("time_s", "source", "kind", "task", "node") if c in df]
    return df[first + [c for c in df.columns if c not in first]]
