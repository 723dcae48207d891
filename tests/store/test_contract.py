"""The contract every history store backend keeps, run against each of them.

SQLite runs on a real file; MongoDB only on a real server (``RPIAAS_TEST_MONGO_URI``),
never a mock.  Hypothesis examples share one store per test and write to a
fresh node each, so every example starts from an empty history.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpiaas.store import (
    CompactResult,
    Event,
    HistoryStore,
    PurgeResult,
    Sample,
    StateChange,
    StoreClosedError,
)
from rpiaas.store.buckets import bucket_index

from .conftest import StoreFactory, sample

NUMERIC = ("cpu_util", "mem_used_mb", "mem_total_mb", "load1", "disk_used_ratio")
HYPOTHESIS = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])
_fresh = itertools.count()


def fresh_node() -> str:
    return f"node{next(_fresh)}"


# ------------------------------------------------------------------ strategies
fractions = st.floats(0.0, 1.0)
def samples_of(times: st.SearchStrategy[float]) -> st.SearchStrategy[list[Sample]]:
    return st.lists(st.builds(
        lambda t, cpu, used, load, disk, temp, cores, online: sample(
            "?", t, cpu_util=cpu, mem_used_mb=used, load1=load, disk_used_ratio=disk,
            temperature_c=temp, cpu_per_core=cores, online=online),
        times, fractions, st.floats(0.0, 4096.0), st.floats(0.0, 64.0),
        fractions, st.none() | st.floats(-20.0, 110.0),
        st.none() | st.lists(fractions, min_size=1, max_size=4).map(tuple), st.booleans()),
        max_size=60)


samples_st = samples_of(st.floats(0.0, 1000.0))
# quarter seconds: a time just below a bucket boundary may round into the next
# bucket when divided by one resolution and not by another; that float edge is
# not what the compaction property is about
quarter_samples_st = samples_of(st.integers(0, 4800).map(lambda i: i / 4))


def on(node: str, samples: list[Sample]) -> list[Sample]:
    """``samples`` moved to ``node``."""
    return [replace(s, node=node) for s in samples]


# ------------------------------------------------------------------ writing and reading
def test_history_returns_what_was_added(store: HistoryStore) -> None:
    added = [sample("pi01", 30.0, cpu_util=0.5, temperature_c=51.5, cpu_per_core=(0.5, 1.0, 0.0)),
             sample("pi01", 10.0, online=False),
             sample("pi02", 20.0, mem_used_mb=1024.5)]
    store.add_samples(added)
    store.flush()
    assert store.history("pi01") == [added[1], added[0]]
    assert store.history("pi02") == [added[2]]
    assert store.nodes() == ["pi01", "pi02"]


def test_queries_see_buffered_samples(make_store: StoreFactory) -> None:
    store = make_store(batch_size=10_000, flush_interval_s=3600.0)
    store.add_samples(sample("pi01", float(t)) for t in range(5))
    assert store.pending == 5
    assert len(store.history("pi01")) == 5
    assert store.pending == 0
    store.add_sample(sample("pi01", 9.0))
    assert store.flush() == 1
    assert store.flush() == 0


def test_a_full_batch_is_written_without_a_flush(make_store: StoreFactory) -> None:
    store = make_store(batch_size=4, flush_interval_s=3600.0)
    store.add_samples(sample("pi01", float(t)) for t in range(3))
    assert store.pending == 3
    store.add_sample(sample("pi01", 3.0))
    assert store.pending == 0


def test_an_old_buffer_is_written_on_the_next_add(make_store: StoreFactory) -> None:
    now = [100.0]
    store = make_store(batch_size=1000, flush_interval_s=2.0, clock=lambda: now[0])
    store.add_sample(sample("pi01", 0.0))
    now[0] += 1.0
    store.add_sample(sample("pi01", 1.0))
    assert store.pending == 2
    now[0] += 1.5  # the first sample has now waited 2.5 s
    store.add_sample(sample("pi01", 2.0))
    assert store.pending == 0


def test_only_samples_are_accepted(store: HistoryStore) -> None:
    with pytest.raises(TypeError, match="expected a Sample, got dict"):
        store.add_samples([sample(), {"node": "pi01"}])  # type: ignore[list-item]
    assert store.pending == 0


def test_ranges_are_half_open_and_open_ended(store: HistoryStore) -> None:
    store.add_samples(sample("pi01", float(t)) for t in (0, 10, 20, 30))

    def times(**bounds: float) -> list[float]:
        return [s.time_s for s in store.history("pi01", **bounds)]

    assert times(start_s=10, end_s=30) == [10.0, 20.0]
    assert times(start_s=10) == [10.0, 20.0, 30.0]
    assert times(end_s=10) == [0.0]
    assert times(start_s=40) == []
    assert times(start_s=30, end_s=10) == []


def test_equal_times_keep_the_order_they_were_added_in(store: HistoryStore) -> None:
    added = [sample("pi01", 5.0, cpu_util=c) for c in (0.3, 0.1, 0.2)]
    store.add_samples(added[:2])
    store.flush()
    store.add_sample(added[2])
    assert store.history("pi01") == added


def test_an_unknown_node_has_no_history(store: HistoryStore) -> None:
    store.add_sample(sample("pi01"))
    assert store.history("nope") == []
    assert store.history("nope", resolution_s=60) == []
    assert store.latest("nope") == {}
    assert store.states("nope") == []
    assert store.events("nope") == []


@given(samples=samples_st, bounds=st.tuples(st.floats(0, 1000), st.floats(0, 1000)))
@HYPOTHESIS
def test_history_is_the_added_samples_in_range_sorted_by_time(
        store: HistoryStore, samples: list[Sample], bounds: tuple[float, float]) -> None:
    node = fresh_node()
    added = on(node, samples)
    store.add_samples(added)
    start, end = min(bounds), max(bounds)
    got = store.history(node, start, end)
    # sorted() is stable: equal times keep the order of adding
    assert got == sorted((s for s in added if start <= s.time_s < end), key=lambda s: s.time_s)


# ------------------------------------------------------------------ downsampling
def test_downsampled_history_averages_each_bucket(store: HistoryStore) -> None:
    store.add_samples([
        sample("pi01", 0.0, cpu_util=0.2, temperature_c=40.0, cpu_per_core=(0.2, 0.4)),
        sample("pi01", 30.0, cpu_util=0.4, temperature_c=None, cpu_per_core=(0.4, 0.8),
               online=False),
        sample("pi01", 59.9, cpu_util=0.6, temperature_c=50.0, cpu_per_core=None,
               online=False),
        sample("pi01", 130.0, cpu_util=1.0, mem_used_mb=1000.0, online=False),
    ])
    first, second = store.history("pi01", resolution_s=60)
    assert first.time_s == 0.0 and first.count == 3 and first.resolution_s == 60.0
    assert first.cpu_util == pytest.approx(0.4)
    assert first.temperature_c == pytest.approx(45.0)  # the null is left out
    assert first.cpu_per_core == pytest.approx((0.3, 0.6))
    assert first.online is True  # online in at least one sample
    assert (second.time_s, second.count, second.cpu_util, second.mem_used_mb) == (120.0, 1, 1.0,
                                                                                    1000.0)
    assert second.temperature_c is None and second.cpu_per_core is None
    assert second.online is False


def test_downsampling_covers_only_the_range(store: HistoryStore) -> None:
    store.add_samples(sample("pi01", float(t), cpu_util=t / 100) for t in range(0, 100, 10))
    rows = store.history("pi01", 25, 75, resolution_s=50)
    assert [(r.time_s, r.count) for r in rows] == [(0.0, 2), (50.0, 3)]
    assert rows[0].cpu_util == pytest.approx(0.35)


@given(samples=samples_st, resolution=st.sampled_from([0.5, 7.0, 60.0, 1000.0]))
@HYPOTHESIS
def test_bucket_means_lie_between_the_bucket_min_and_max(
        store: HistoryStore, samples: list[Sample], resolution: float) -> None:
    node = fresh_node()
    added = on(node, samples)
    store.add_samples(added)
    buckets: dict[int, list[Sample]] = {}
    for s in added:
        buckets.setdefault(bucket_index(s.time_s, resolution), []).append(s)
    rows = store.history(node, resolution_s=resolution)
    assert [bucket_index(r.time_s, resolution) for r in rows] == sorted(buckets)
    for row in rows:
        inside = buckets[bucket_index(row.time_s, resolution)]
        assert row.count == len(inside)
        assert row.online == any(s.online for s in inside)
        for f in NUMERIC:
            values = [getattr(s, f) for s in inside]
            assert min(values) <= getattr(row, f) <= max(values)
            assert getattr(row, f) == pytest.approx(math.fsum(values) / len(values), rel=1e-9)
        temps = [s.temperature_c for s in inside if s.temperature_c is not None]
        if temps:
            assert row.temperature_c is not None
            assert min(temps) <= row.temperature_c <= max(temps)
        else:
            assert row.temperature_c is None
        for i, mean in enumerate(row.cpu_per_core or ()):
            cores = [s.cpu_per_core[i] for s in inside
                     if s.cpu_per_core is not None and len(s.cpu_per_core) > i]
            assert min(cores) <= mean <= max(cores)


def test_the_mean_of_equal_values_is_that_value(store: HistoryStore) -> None:
    # 0.1 + 0.1 + 0.1 = 0.30000000000000004: unclamped, the mean would leave [min, max]
    for v in (0.1, 0.7, 1.0):
        node = fresh_node()
        store.add_samples(sample(node, float(t), cpu_util=v, disk_used_ratio=v,
                                 cpu_per_core=(v, v)) for t in range(3))
        (row,) = store.history(node, resolution_s=60)
        assert row.cpu_util == row.disk_used_ratio == v
        assert row.cpu_per_core == (v, v)


def test_resolution_must_be_positive(store: HistoryStore) -> None:
    for bad in (0, -60, math.inf, math.nan):
        with pytest.raises(ValueError, match="resolution_s must be finite and > 0"):
            store.history("pi01", resolution_s=bad)


# ------------------------------------------------------------------ latest, states, events
def test_latest_is_the_newest_sample_and_state_of_each_node(store: HistoryStore) -> None:
    store.add_samples([sample("pi01", 10.0, cpu_util=0.1), sample("pi01", 20.0, cpu_util=0.2),
                       sample("pi02", 15.0)])
    store.record_state("pi02", 5.0, True, "first poll")
    store.record_state("pi02", 25.0, False, "agent unreachable")
    store.record_state("pi03", 1.0, True, "boot report")
    latest = store.latest()
    assert sorted(latest) == ["pi01", "pi02", "pi03"]
    pi01, pi02, pi03 = latest["pi01"], latest["pi02"], latest["pi03"]
    assert pi01.sample is not None and pi01.sample.cpu_util == 0.2
    assert pi01.state is None and pi01.online is True and pi01.time_s == 20.0
    assert pi02.state == StateChange("pi02", 25.0, False, "agent unreachable")
    assert pi02.online is False and pi02.time_s == 25.0  # the state change is newer
    assert pi03.sample is None and pi03.online is True
    assert store.latest("pi01") == {"pi01": pi01}


def test_a_node_with_only_events_has_no_latest_status(store: HistoryStore) -> None:
    store.record_event("pi09", 1.0, "boot", {})
    assert store.latest() == {}
    assert store.nodes() == ["pi09"]


def test_states_are_sorted_and_filtered(store: HistoryStore) -> None:
    store.record_state("pi02", 30.0, True)
    store.record_state("pi01", 10.0, False, "agent unreachable")
    store.record_state("pi01", 20.0, True, "agent answered")
    assert store.states() == [StateChange("pi01", 10.0, False, "agent unreachable"),
                              StateChange("pi01", 20.0, True, "agent answered"),
                              StateChange("pi02", 30.0, True, "")]
    assert [s.time_s for s in store.states("pi01")] == [10.0, 20.0]
    assert [s.time_s for s in store.states(start_s=15, end_s=30)] == [20.0]


def test_events_keep_their_json_data(store: HistoryStore) -> None:
    data = {"kernel": "6.6.31-v8+", "boot_s": 21.5, "cmdline": ["root=/dev/nfs", "ip=dhcp"],
            "ok": True, "serial": None, "nested": {"a": [1, {"b": 2}]}}
    store.record_event("pi01", 12.0, "boot", data)
    store.record_event("pi01", 13.0, "netboot")
    store.record_event("pi02", 11.0, "boot", {"boot_s": 30})
    assert store.events("pi01") == [Event("pi01", 12.0, "boot", data),
                                    Event("pi01", 13.0, "netboot", {})]
    assert [e.node for e in store.events(kind="boot")] == ["pi02", "pi01"]
    assert store.events(start_s=12.5) == [Event("pi01", 13.0, "netboot", {})]


def test_event_data_must_be_a_json_object(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="JSON object"):
        store.record_event("pi01", 1.0, "boot", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.record_event("pi01", 1.0, "boot", {"when": object()})
    with pytest.raises(ValueError):
        store.record_event("pi01", 1.0, "boot", {"x": math.nan})
    assert store.events() == []


def test_records_refuse_bad_values(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="percentage"):
        sample(cpu_util=57.0)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="time_s"):
            sample(time_s=bad)
    with pytest.raises(ValueError, match="node"):
        sample(node="")
    with pytest.raises(ValueError, match="mem_used_mb"):
        sample(mem_used_mb=-1.0)
    with pytest.raises(ValueError, match="cpu_per_core"):
        sample(cpu_per_core=(0.5, 2.0))
    with pytest.raises(ValueError, match="count"):
        sample(count=0)
    with pytest.raises(ValueError, match="time_s"):
        store.record_state("pi01", -5.0, True)
    assert sample(cpu_per_core=[0.5, 0.25]).cpu_per_core == (0.5, 0.25)  # a list is kept as a tuple


# ------------------------------------------------------------------ retention
def _ten_second_samples(store: HistoryStore, node: str = "pi01", end: int = 600) -> None:
    store.add_samples(sample(node, float(t), cpu_util=(t % 70) / 70, mem_used_mb=float(t),
                             temperature_c=40.0 + t / 100, cpu_per_core=((t % 600) / 600, 0.5))
                      for t in range(0, end, 10))


def test_compact_replaces_old_buckets_by_their_means(store: HistoryStore) -> None:
    _ten_second_samples(store)
    store.record_state("pi01", 5.0, True)
    store.record_event("pi01", 6.0, "boot", {})
    before = store.history("pi01", resolution_s=60)
    assert store.compact(330.0, 60.0) == CompactResult(replaced=30, written=5)
    rows = store.history("pi01")
    assert [r.time_s for r in rows[:5]] == [0.0, 60.0, 120.0, 180.0, 240.0]
    assert all(r.count == 6 and r.resolution_s == 60.0 for r in rows[:5])
    # the bucket holding the cutoff (300-359 s) and all after it stay raw
    assert [r.time_s for r in rows[5:]] == [float(t) for t in range(300, 600, 10)]
    assert all(r.count == 1 and r.resolution_s == 0.0 for r in rows[5:])
    after = store.history("pi01", resolution_s=60)
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        assert (a.time_s, a.count, a.online) == (b.time_s, b.count, b.online)
        for f in (*NUMERIC, "temperature_c"):
            assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-12)
        assert a.cpu_per_core == pytest.approx(b.cpu_per_core, rel=1e-12)
    assert len(store.states()) == 1 and len(store.events()) == 1
    assert store.compact(330.0, 60.0) == CompactResult(0, 0)  # nothing left to do


def test_compacting_again_coarser_keeps_the_raw_means(store: HistoryStore) -> None:
    _ten_second_samples(store, end=7200)
    hourly = store.history("pi01", resolution_s=3600)
    store.compact(7200.0, 60.0)
    store.compact(7200.0, 600.0)
    assert store.compact(7200.0, 3600.0) == CompactResult(replaced=12, written=2)
    rows = store.history("pi01")
    assert [(r.time_s, r.count, r.resolution_s) for r in rows] == [(0.0, 360, 3600.0),
                                                                    (3600.0, 360, 3600.0)]
    for a, b in zip(rows, hourly, strict=True):
        for f in NUMERIC:
            assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-12)


def test_compact_before_the_first_bucket_does_nothing(store: HistoryStore) -> None:
    _ten_second_samples(store)
    assert store.compact(59.0, 60.0) == CompactResult(0, 0)
    assert store.compact(-1.0, 60.0) == CompactResult(0, 0)
    assert len(store.history("pi01")) == 60


@given(samples=quarter_samples_st, cutoff=st.floats(0.0, 1200.0),
       fine=st.sampled_from([1.0, 7.5, 60.0]),
       times=st.sampled_from([1, 2, 8]))
@HYPOTHESIS
def test_compaction_keeps_the_means_of_coarser_histories(
        store: HistoryStore, samples: list[Sample], cutoff: float, fine: float,
        times: int) -> None:
    node = fresh_node()
    store.add_samples(on(node, samples))
    coarse = fine * times
    before = store.history(node, resolution_s=coarse)
    kc = bucket_index(cutoff, fine)
    raw_after_cut = [s for s in store.history(node) if bucket_index(s.time_s, fine) >= kc]
    result = store.compact(cutoff, fine)
    assert result.written <= result.replaced
    after = store.history(node, resolution_s=coarse)
    assert [(r.time_s, r.count, r.online) for r in after] == [
        (r.time_s, r.count, r.online) for r in before]
    for a, b in zip(after, before, strict=True):
        for f in NUMERIC:
            assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-9, abs=1e-12)
    assert [s for s in store.history(node) if bucket_index(s.time_s, fine) >= kc] == raw_after_cut
    assert store.compact(cutoff, fine) == CompactResult(0, 0)


def test_purge_deletes_old_rows_but_each_nodes_newest_state(store: HistoryStore) -> None:
    _ten_second_samples(store)
    store.record_state("pi01", 5.0, True, "up")
    store.record_state("pi01", 50.0, False, "down")
    store.record_state("pi01", 500.0, True, "up again")
    store.record_state("pi02", 7.0, False, "never came back")
    store.record_event("pi01", 8.0, "boot", {})
    store.record_event("pi01", 400.0, "boot", {})
    assert store.purge(300.0) == PurgeResult(samples=30, states=2, events=1)
    assert store.history("pi01")[0].time_s == 300.0
    assert [s.reason for s in store.states()] == ["never came back", "up again"]
    assert [e.time_s for e in store.events()] == [400.0]
    assert store.nodes() == ["pi01", "pi02"]
    assert store.latest("pi02")["pi02"].online is False
    assert store.purge(300.0) == PurgeResult(0, 0, 0)


# ------------------------------------------------------------------ lifecycle and threads
def test_close_flushes_and_the_data_is_there_after_reopening(make_store: StoreFactory) -> None:
    store = make_store(batch_size=10_000, flush_interval_s=3600.0)
    store.add_samples(sample("pi01", float(t)) for t in range(100))
    store.record_state("pi01", 1.0, True)
    store.close()
    store.close()  # a second close does nothing
    assert store.closed
    with pytest.raises(StoreClosedError):
        store.add_sample(sample())
    with pytest.raises(StoreClosedError):
        store.history("pi01")
    with make_store() as again:
        assert len(again.history("pi01")) == 100
        assert len(again.states("pi01")) == 1
    assert again.closed


def test_threads_may_share_a_store(make_store: StoreFactory) -> None:
    store = make_store(batch_size=64)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                store.add_samples(sample(f"pi{i}", float(j * 10 + k)) for k in range(10))
                if j % 10 == 0:
                    store.history(f"pi{i}", resolution_s=60)
                    store.record_state(f"pi{i}", float(j), True)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(4):
        times = [s.time_s for s in store.history(f"pi{i}")]
        assert times == [float(t) for t in range(500)]


def test_an_asyncio_app_calls_it_in_a_thread(store: HistoryStore) -> None:
    async def app() -> list[Sample]:
        await asyncio.to_thread(store.add_samples, [sample("pi01", 1.0), sample("pi01", 2.0)])
        return await asyncio.to_thread(store.history, "pi01")

    assert [s.time_s for s in asyncio.run(app())] == [1.0, 2.0]



# ---------------------------------------------------------------- power readings and CPU counters
def test_power_readings_round_trip_sorted_and_in_range(store: HistoryStore) -> None:
    from rpiaas.store import PowerReading

    node = fresh_node()
    readings = [PowerReading(node, t, w, "hwmon") for t, w in ((3.0, 4.5), (1.0, 2.25), (2.0, 3.0))]
    store.add_power(readings)
    store.add_power([PowerReading("other", 1.5, 9.0, "snmp")])
    got = store.power(node)
    assert [(r.time_s, r.watts, r.source) for r in got] == [(1.0, 2.25, "hwmon"), (2.0, 3.0, "hwmon"),
                                                            (3.0, 4.5, "hwmon")]
    assert [r.time_s for r in store.power(node, 1.5, 3.0)] == [2.0]  # half-open
    assert store.power("nobody") == []
    assert node in store.nodes()
    with pytest.raises(TypeError):
        store.add_power([sample()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="watts must be a finite number"):
        PowerReading(node, 1.0, math.nan, "hwmon")


def test_purge_deletes_old_power_readings(store: HistoryStore) -> None:
    from rpiaas.store import PowerReading

    node = fresh_node()
    store.add_power([PowerReading(node, t, 1.0, "http") for t in (1.0, 2.0, 3.0)])
    result = store.purge(2.5)
    assert result.power == 2
    assert [r.time_s for r in store.power(node)] == [3.0]


def test_cpu_counter_round_trips_on_raw_samples_only(store: HistoryStore) -> None:
    node = fresh_node()
    store.add_samples([sample(node, 1.0, cpu_busy_s=10.5), sample(node, 2.0, cpu_busy_s=11.25),
                       sample(node, 3.0)])
    assert [s.cpu_busy_s for s in store.history(node)] == [10.5, 11.25, None]
    assert store.latest(node)[node].sample.cpu_busy_s is None  # type: ignore[union-attr]
    # a bucket's mean of a counter would mean nothing: downsampled rows carry none
    assert [s.cpu_busy_s for s in store.history(node, resolution_s=10.0)] == [None]
    with pytest.raises(ValueError, match="cpu_busy_s must be finite"):
        sample(node, 1.0, cpu_busy_s=-1.0)
