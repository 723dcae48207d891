"""A run's waits in bounded memory: numpy's mean, 95th percentile and largest, to the bit,
whether the waits stayed in memory or went to the file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rpiaas.rundir import RunWriter, run_record, waits
from rpiaas.rundir.waits import Waits
from rpiaas.sim import Simulation

from ..helpers import scenario


def _numpy(values: np.ndarray) -> tuple[float, float, float]:
    return float(values.mean()), float(np.percentile(values, 95)), float(values.max())


def _same(a: tuple[float, float, float] | None, b: tuple[float, float, float]) -> None:
    assert a is not None
    assert [x.hex() for x in a] == [x.hex() for x in b], (a, b)


def _cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(16)
    return [
        ("one", np.array([3.25])),
        ("two", np.array([5.0, 1.0])),
        ("exponential", rng.exponential(40.0, 5_003)),
        ("magnitudes", rng.exponential(1.0, 4_099) * rng.choice([1e-6, 1.0, 1e6], 4_099)),
        ("ties", rng.integers(0, 4, 3_001).astype(float)),
        ("zeros", np.zeros(2_500)),
        ("mostly zero", np.where(rng.random(6_000) < 0.97, 0.0, rng.exponential(5.0, 6_000))),
        ("negative", rng.normal(0.0, 10.0, 2_777)),
        ("infinite", np.concatenate([rng.exponential(1.0, 999), [math.inf]])),
        ("integers", np.arange(1_000, dtype=float)[::-1].copy()),
        # 11 values: the 95th percentile lies half-way between the two largest, where numpy
        # interpolates from the upper one (the two ways round differ in the last bit here)
        ("half-way", np.array([19108850619.64363, *range(9), 6369616873.214543])),
    ]


@pytest.mark.parametrize(("keep", "block"), [(1, 128), (64, 128), (500, 1000), (10**6, 128)])
@pytest.mark.parametrize(("name", "values"), _cases(), ids=[c[0] for c in _cases()])
def test_the_figures_are_numpys_in_memory_or_from_the_file(name: str, values: np.ndarray, keep: int,
                                                           block: int, tmp_path: Path) -> None:
    """``keep=1`` selects every bit by counting passes; larger keeps end in a partition of the
    candidates; the largest keeps everything in memory."""
    w = Waits(keep=keep, spill_dir=str(tmp_path), block=block)
    for i, x in enumerate(values.tolist()):
        if i % 3:
            w.append(x)
        else:
            w.values.append(x)
            w.settle()
    assert len(w) == len(values)
    assert len(w.values) < keep and w.spilled == len(values) - len(w.values)
    assert not os.listdir(tmp_path)  # the file has no name: nothing is left behind
    _same(w.figures(), _numpy(values))
    assert w.tobytes() == values.tobytes()
    _same(w.figures(), _numpy(values))  # taking them twice changes nothing


@pytest.mark.parametrize("keep", [10, 10**6])  # from the file, in memory
def test_a_nan_makes_every_figure_nan(tmp_path: Path, keep: int) -> None:
    values = np.array([1.0, 2.0, math.nan, *range(500)])
    w = Waits(keep=keep, spill_dir=str(tmp_path))
    for x in values.tolist():
        w.append(x)
    got = w.figures()
    assert got is not None and all(math.isnan(x) for x in got)
    assert all(math.isnan(x) for x in _numpy(values))


def test_no_wait_has_no_figures_and_bad_sizes_are_refused() -> None:
    assert Waits().figures() is None
    with pytest.raises(ValueError, match="block"):
        Waits(block=64)
    with pytest.raises(ValueError, match="keep"):
        Waits(keep=0)


def test_frombytes_and_clear(tmp_path: Path) -> None:
    values = np.random.default_rng(3).exponential(2.0, 1_000)
    w = Waits(keep=100, spill_dir=str(tmp_path))
    w.frombytes(values[:700].tobytes())
    w.frombytes(values[700:].tobytes())
    assert w.tobytes() == values.tobytes()
    _same(w.figures(), _numpy(values))
    w.clear()
    assert len(w) == 0 and w.figures() is None and w.spilled == 0


def test_a_run_whose_waits_go_to_the_file_writes_the_same_run_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run written here (not by the writer process) with waits spilled every 50 tasks."""
    sc = scenario({
        "name": "spill", "seed": 5,
        "cluster": {"clusters": [{"domain": "a.test", "prefix": "10.0.1", "count": 4, "type": "rpi4b"}]},
        "workload": {"generator": {
            "count": 2_000, "arrival": {"rate_per_s": 0.5},
            "cores": {"dist": "choice", "values": [1, 2, 4]},
            "mem_mb": {"dist": "uniform", "low": 64, "high": 3000},
            "work_core_s": {"dist": "exponential", "mean": 30}}},
        "policy": "best_fit"})

    def run(out: Path) -> bytes:
        writer = RunWriter(out, background=False)
        sim = Simulation(sc, writer)
        summary = sim.run()
        spilled = writer.stats.waits.spilled
        writer.commit(run_record(sc, "sim", summary, sim.node_energy()), {})
        assert (spilled > 0) == (waits.KEEP == 50)
        return (out / "run.json").read_bytes()

    whole = run(tmp_path / "memory")
    monkeypatch.setattr(waits, "KEEP", 50)
    assert run(tmp_path / "file") == whole
    assert json.loads(whole)["summary"]["p95_wait_s"] > 0
