"""The task and node tables as Parquet: ``tasks.parquet`` and ``nodes.parquet``.

A run written with ``--format parquet`` streams ``tasks.csv`` and
``nodes.csv`` as usual (the writers append rows as the run goes) and
:func:`convert` turns them into Parquet files with the same columns when the
run commits, before its directory is moved into place; the CSV files are then
removed, and ``run.json`` says ``"tables": "parquet"``.  Times a task never
reached are nulls (empty fields in CSV); names (``node``, ``state``,
``kind``, ``tenant``) are dictionary-encoded.

pyarrow is optional (the ``analysis`` extra): :func:`need_pyarrow` says how
to install it in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .format import NODE_COLUMNS, TASK_COLUMNS

__all__ = ["ANALYSIS_EXTRA", "NODE_TYPES", "TASK_TYPES", "convert", "need_pyarrow", "read_columns"]

ANALYSIS_EXTRA = "pip install 'rpiaas[analysis]'"

# column types; the names are strings, dictionary-encoded
TASK_TYPES = {"task_id": "int64", "arrival_s": "float64", "start_s": "float64",
              "end_s": "float64", "node": "string", "state": "string", "wait_s": "float64",
              "response_s": "float64", "slowdown": "float64", "bounded_slowdown": "float64",
              "cores": "int64", "mem_mb": "int64", "work_core_s": "float64", "kind": "string",
              "tenant": "string", "attempts": "int64", "nodes": "string", "reason": "string",
              "cpu_s": "float64", "peak_mem_mb": "float64", "pull_s": "float64"}
NODE_TYPES = {"time_s": "float64", "node": "string", "state": "string", "cores_used": "int64",
              "mem_used_mb": "int64", "utilization": "float64", "power_w": "float64",
              "energy_j": "float64", "tasks": "int64", "cpu_utilization": "float64",
              "power_source": "string"}
assert tuple(TASK_TYPES) == TASK_COLUMNS and tuple(NODE_TYPES) == NODE_COLUMNS


def need_pyarrow(what: str) -> Any:
    """The ``pyarrow`` module, or ``ModuleNotFoundError`` with one line naming the extra."""
    try:
        import pyarrow
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"{what} needs pyarrow, part of the analysis extra ({ANALYSIS_EXTRA})",
            name="pyarrow") from None
    return pyarrow


def _schema_types(pa: Any, types: dict[str, str]) -> dict[str, Any]:
    return {k: pa.string() if v == "string" else getattr(pa, v)() for k, v in types.items()}


def convert(directory: Path, remove: bool = True) -> None:
    """Write ``tasks.parquet`` and ``nodes.parquet`` from the CSV tables in ``directory``."""
    pa = need_pyarrow("the parquet format")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    for name, types in (("tasks", TASK_TYPES), ("nodes", NODE_TYPES)):
        src = directory / f"{name}.csv"
        convert_options = pacsv.ConvertOptions(
            column_types=_schema_types(pa, types), strings_can_be_null=False,
            null_values=[""], quoted_strings_can_be_null=False)
        # a table that streams row by row can be large: read and write it in blocks
        reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=16 << 20),
                                convert_options=convert_options)
        strings = [k for k, v in types.items() if v == "string"]
        writer = None
        try:
            for batch in reader:
                table = pa.Table.from_batches([batch])
                for col in strings:
                    i = table.schema.get_field_index(col)
                    table = table.set_column(i, col, table.column(col).dictionary_encode())
                if writer is None:
                    writer = pq.ParquetWriter(directory / f"{name}.parquet", table.schema)
                writer.write_table(table)
            if writer is None:  # a header and no rows
                empty = pa.schema([(k, pa.dictionary(pa.int32(), pa.string()) if v == "string"
                                    else t) for (k, v), t in zip(
                                        types.items(), _schema_types(pa, types).values(),
                                        strict=True)])
                pq.write_table(empty.empty_table(), directory / f"{name}.parquet")
        finally:
            if writer is not None:
                writer.close()
        if remove:
            src.unlink()


def read_columns(f: Path, columns: tuple[str, ...]) -> dict[str, Any]:
    """Columns of a Parquet table as numpy arrays: numbers as float64/int64 (nulls as ``nan``),
    names as Python string lists."""
    need_pyarrow(f"reading {f.name}")
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(f, columns=list(columns))
    out: dict[str, Any] = {}
    for name in columns:
        col = table.column(name)
        if str(col.type).startswith("dictionary") or str(col.type) == "string":
            out[name] = col.to_pylist()
        elif str(col.type) == "double":
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.int64)
    return out
