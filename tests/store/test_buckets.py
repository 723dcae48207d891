"""The downsampling arithmetic shared by the backends."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rpiaas.store.buckets import (
    BUCKET_COLUMNS,
    MEAN_FIELDS,
    bucket_index,
    bucket_sample,
    bucket_time,
    core_means,
    cutoff_bucket,
)
from rpiaas.store.mongodb import _group


@given(k=st.integers(0, 10**9), r=st.floats(1e-3, 1e5))
def test_a_bucket_starts_inside_itself(k: int, r: float) -> None:
    t = bucket_time(k, r)
    assert bucket_index(t, r) == k
    assert t == k * r or math.isclose(t, k * r, rel_tol=1e-12)


def test_cutoff_bucket_is_clamped() -> None:
    assert cutoff_bucket(330.0, 60.0) == 5
    assert cutoff_bucket(0.0, 60.0) == cutoff_bucket(-math.inf, 60.0) == 0
    assert cutoff_bucket(math.inf, 60.0) == 2**62


def test_a_bucket_row_becomes_a_mean_sample() -> None:
    row: list[object] = [3, 4, 2, True, 0.0, 60.0]
    sums = {"cpu_util": (1.2, 4, 0.1, 0.5), "mem_used_mb": (400.0, 4, 50.0, 150.0),
            "mem_total_mb": (4000.0, 4, 1000.0, 1000.0), "load1": (2.0, 4, 0.5, 0.5),
            "disk_used_ratio": (0.8, 4, 0.2, 0.2), "temperature_c": (None, 0, None, None)}
    for f in MEAN_FIELDS:
        row.extend(sums[f])
    assert len(row) == len(BUCKET_COLUMNS)
    s = bucket_sample("pi01", row, 30.0, (0.25,))
    assert (s.time_s, s.count, s.resolution_s, s.online) == (90.0, 4, 60.0, True)
    assert (s.cpu_util, s.mem_used_mb, s.temperature_c) == (0.3, 100.0, None)
    assert s.cpu_per_core == (0.25,)


def test_core_means_are_per_bucket_and_in_core_order() -> None:
    rows = [(2, 1, 1.0, 2, 0.4, 0.6), (2, 0, 0.2, 2, 0.1, 0.1), (5, 0, 0.9, 1, 0.9, 0.9)]
    assert core_means(rows) == {2: (0.1, 0.5), 5: (0.9,)}


def test_the_mongo_group_stage_yields_every_bucket_column() -> None:
    # no server needed: the $group stage and BUCKET_COLUMNS must name the same fields
    group = _group(60.0)["$group"]
    assert ["k" if key == "_id" else key for key in group] == list(BUCKET_COLUMNS)
