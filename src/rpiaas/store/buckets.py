"""Downsampling arithmetic shared by the backends.

A history at ``resolution_s`` groups a node's rows into buckets
``k = floor(time_s / resolution_s)`` (epoch-aligned, so buckets of 60 s nest
in buckets of 3600 s).  Each backend computes, per bucket, sums, counts,
minima and maxima in the database (SQL ``GROUP BY``, a Mongo ``$group``) and
hands them over as a *bucket row*, a tuple in :data:`BUCKET_COLUMNS` order;
:func:`bucket_sample` turns it into a :class:`~rpiaas.store.records.Sample`.

Means are weighted by ``count``, so averaging rows that are themselves
averages (compacted history) gives the mean of the raw samples they replaced.
A mean is clamped into the bucket's ``[min, max]``: floating-point sums can
land one ulp outside (three samples of 0.1 sum to 0.30000000000000004), and a
mean of fractions must stay a fraction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from .records import Sample

__all__ = ["BUCKET_COLUMNS", "MEAN_FIELDS", "bucket_index", "bucket_sample", "bucket_time",
           "check_resolution", "core_means", "cutoff_bucket"]

#: Numeric fields averaged per bucket (``temperature_c`` may be null: nulls are left out).
MEAN_FIELDS = ("cpu_util", "mem_used_mb", "mem_total_mb", "load1", "disk_used_ratio",
               "temperature_c")

#: A bucket row: the bucket index; the sum of ``count``; how many stored rows;
#: whether any row was online; the least and greatest ``resolution_s``; then for
#: each of :data:`MEAN_FIELDS`: the sum of ``value * count``, the sum of
#: ``count`` over non-null values, the minimum and the maximum.
BUCKET_COLUMNS: tuple[str, ...] = (
    "k", "count", "rows", "online", "res_min", "res_max",
    *(f"{f}_{part}" for f in MEAN_FIELDS for part in ("sum", "n", "lo", "hi")))
_FIRST = 6  # index of the first per-field column


def check_resolution(resolution_s: float) -> float:
    """``resolution_s`` as a float, or ValueError unless it is finite and > 0."""
    r = float(resolution_s)
    if not (0.0 < r < math.inf):
        raise ValueError(f"resolution_s must be finite and > 0, got {resolution_s!r}")
    return r


def bucket_index(time_s: float, resolution_s: float) -> int:
    """The bucket of ``time_s``: ``floor(time_s / resolution_s)``, as SQLite's
    ``CAST(time_s / r AS INTEGER)`` and Mongo's ``$floor`` compute it (times are >= 0)."""
    return int(time_s / resolution_s)


def cutoff_bucket(older_than_s: float, resolution_s: float) -> int:
    """The first bucket that compaction leaves alone: ``floor(older_than_s / r)``,
    clamped to ``[0, 2**62]`` (SQLite integers are 64-bit)."""
    if not older_than_s > 0:
        return 0
    if older_than_s / resolution_s >= 2.0**62:
        return 2**62
    return bucket_index(older_than_s, resolution_s)


def bucket_time(k: int, resolution_s: float) -> float:
    """The start of bucket ``k``, nudged by an ulp where needed so that it lies in bucket ``k``.

    ``k * r / r`` is not always ``k`` in floating point (``r = 0.1``); a
    compacted row stamped at its bucket's start must fall in that same bucket
    when queried again.
    """
    t = k * resolution_s
    while bucket_index(t, resolution_s) < k:
        t = math.nextafter(t, math.inf)
    while t > 0 and bucket_index(t, resolution_s) > k:
        t = math.nextafter(t, -math.inf)
    return t


def bucket_sample(node: str, row: Sequence[Any], resolution_s: float,
                  cores: tuple[float, ...] | None = None) -> Sample:
    """The mean :class:`Sample` of one bucket row (see :data:`BUCKET_COLUMNS`).

    Its ``time_s`` is the bucket's start, ``count`` the raw samples it stands
    for, ``online`` true if any of them was online, and ``resolution_s`` the
    larger of the requested one and the coarsest row inside.
    """
    means: list[float | None] = []
    for i in range(_FIRST, len(BUCKET_COLUMNS), 4):  # a plain loop: thousands of buckets a query
        total, n, lo, hi = row[i], row[i + 1], row[i + 2], row[i + 3]
        if n:
            m = total / n
            means.append(float(lo if m < lo else hi if m > hi else m))
        else:
            means.append(None)
    cpu, mem_used, mem_total, load1, disk, temp = means
    assert cpu is not None and mem_used is not None and mem_total is not None
    assert load1 is not None and disk is not None
    k, count, _rows, online, _res_min, res_max = row[:_FIRST]
    return Sample(node=node, time_s=bucket_time(int(k), resolution_s), cpu_util=cpu,
                  mem_used_mb=mem_used, mem_total_mb=mem_total, load1=load1,
                  disk_used_ratio=disk, temperature_c=temp, cpu_per_core=cores,
                  online=bool(online), count=int(count),
                  resolution_s=max(resolution_s, float(res_max)))


def core_means(rows: Iterable[Sequence[Any]]) -> dict[int, tuple[float, ...]]:
    """Per-core means by bucket from rows ``(k, core, sum, n, lo, hi)``.

    Core ``i``'s mean is over the samples of the bucket that report core ``i``
    (weighted by ``count``); a bucket whose samples report no cores is absent.
    """
    by_bucket: dict[int, dict[int, float]] = {}
    for k, i, total, n, lo, hi in rows:
        by_bucket.setdefault(int(k), {})[int(i)] = float(min(max(total / n, lo), hi))
    return {k: tuple(v for _, v in sorted(cores.items())) for k, cores in by_bucket.items()}
