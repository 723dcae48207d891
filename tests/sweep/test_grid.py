"""The grid of a sweep: seeds and values, run names, a bad grid point."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.sweep.grid import expand, parse_seeds, slug, split_values


def test_seeds_and_values() -> None:
    assert parse_seeds("1-3") == [1, 2, 3] and parse_seeds("7") == [7]
    assert parse_seeds("1,2,5-7") == [1, 2, 5, 6, 7]
    for bad in ("3-1", "a-b", "1,1", "-2"):
        with pytest.raises(InputError):
            parse_seeds(bad)
    assert split_values("0.5,1,2") == ["0.5", "1", "2"]
    assert split_values("{dist: uniform, low: 1, high: 4},3,'a,b'") == [
        "{dist: uniform, low: 1, high: 4}", "3", "'a,b'"]


def test_the_grid_names_each_run(scenario: Path, tmp_path: Path) -> None:
    specs = expand([scenario], ["best_fit", "first_fit"], [1, 2],
                   ["workload.generator.count=50,100", "horizon_s=1e6"], tmp_path / "out")
    assert len(specs) == 2 * 2 * 2
    names = [s.name for s in specs]
    assert names[:3] == ["tiny-best_fit-count=50-s1", "tiny-best_fit-count=50-s2",
                         "tiny-best_fit-count=100-s1"]
    assert len(set(names)) == 8 and all(s.fixed == (("horizon_s", "1e6"),) for s in specs)
    assert Path(specs[0].out) == (tmp_path / "out" / "runs" / names[0]).resolve()
    # no --policy, no --seeds: the scenario's own
    assert [s.name for s in expand([scenario], [], None, [], tmp_path)] == ["tiny-best_fit-s3"]
    # a value with characters a file name should not hold: replaced, plus a stable hash
    a, b = expand([scenario], [], [1], ["workload.generator.work_core_s={dist: exponential, mean: 10},"
                                        "{dist: exponential,  mean: 10}"], tmp_path)
    assert a.name.startswith("tiny-best_fit-work_core_s=_dist_exponential_mean_10-") and a.name.endswith("-s1")
    assert a.name != b.name


def test_a_bad_grid_point_is_an_input_error_before_any_run(scenario: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        expand([scenario], [], [1], ["workload.generator.count=10,-1"], tmp_path)
    assert e.value.path == "workload.generator.count"
    assert not (tmp_path / "runs").exists()


def test_slugs_are_file_names() -> None:
    assert slug("mean_wait_s") == "mean_wait_s"
    assert slug("a b/c:{d}") == "a_b_c_d" and slug("///") == "_"
