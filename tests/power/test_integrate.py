"""Energy from power readings (rpiaas.power.integrate): the trapezoid over the readings' own
times, exact for a power curve whose changes fall on reading times; gaps reported, not filled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpiaas.power import Gap, integrate_energy


def test_a_curve_changing_at_reading_times_is_integrated_exactly() -> None:
    # 2 W for 10 s, a ramp to 6 W over 5 s, 6 W for 5 s: readings at the breakpoints and between
    times = [0.0, 2.5, 5.0, 10.0, 12.0, 15.0, 17.5, 20.0]
    curve = {0.0: 2.0, 2.5: 2.0, 5.0: 2.0, 10.0: 2.0, 12.0: 3.6, 15.0: 6.0, 17.5: 6.0, 20.0: 6.0}
    got = integrate_energy(times, [curve[t] for t in times], 0.0, 20.0)
    assert got.energy_j == pytest.approx(2.0 * 10 + (2.0 + 6.0) / 2 * 5 + 6.0 * 5, rel=1e-12)
    assert got.gaps == () and got.covered_s == 20.0 and got.readings == 8
    assert got.mean_power_w == pytest.approx(got.energy_j / 20.0)


def test_a_window_cut_between_readings_adds_up() -> None:
    times, watts = [0.0, 4.0, 8.0, 12.0], [1.0, 5.0, 5.0, 3.0]
    whole = integrate_energy(times, watts, 1.0, 11.0).energy_j
    parts = integrate_energy(times, watts, 1.0, 6.5).energy_j + integrate_energy(times, watts, 6.5, 11.0).energy_j
    assert whole == pytest.approx(parts, rel=1e-12)
    # 1..4: from 2 W to 5 W; 4..8: 5 W; 8..11: from 5 W to 3.5 W
    assert whole == pytest.approx((2 + 5) / 2 * 3 + 5 * 4 + (5 + 3.5) / 2 * 3)


def test_gaps_are_reported_and_not_filled() -> None:
    times = [0.0, 1.0, 2.0, 3.0, 9.0, 10.0, 11.0]  # read every second, then nothing for 6 s
    got = integrate_energy(times, [4.0] * len(times), 0.0, 12.0)
    assert got.max_gap_s == 3.0  # three times the median interval
    assert got.gaps == (Gap(3.0, 9.0), Gap(11.0, 12.0))  # and nothing after the last reading
    assert got.covered_s == 5.0 and got.energy_j == pytest.approx(4.0 * 5)
    assert got.gaps[0].duration_s == 6.0
    bounded = integrate_energy(times, [4.0] * len(times), 0.0, 11.0, max_gap_s=10.0)
    assert bounded.gaps == () and bounded.energy_j == pytest.approx(44.0)  # a bound the caller set


def test_no_readings_is_one_gap() -> None:
    got = integrate_energy([], [], 5.0, 8.0)
    assert got.energy_j == 0.0 and got.gaps == (Gap(5.0, 8.0),) and got.mean_power_w is None


def test_bad_input_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="2 times but 1 readings"):
        integrate_energy([0.0, 1.0], [1.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="must be sorted"):
        integrate_energy([1.0, 0.0], [1.0, 1.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="ends"):
        integrate_energy([0.0], [1.0], 2.0, 1.0)


@given(st.lists(st.tuples(st.floats(0.01, 5.0), st.floats(0.0, 50.0)), min_size=2, max_size=40),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_the_pieces_of_any_window_add_up(steps: list[tuple[float, float]], cut: float,
                                         lead: float) -> None:
    times, t = [], 0.0
    for dt, _ in steps:
        t += dt
        times.append(t)
    watts = [w for _, w in steps]
    a = times[0] + lead * (times[-1] - times[0]) / 2
    b = times[-1]
    m = a + cut * (b - a)
    bound = 10.0
    whole = integrate_energy(times, watts, a, b, bound)
    left, right = integrate_energy(times, watts, a, m, bound), integrate_energy(times, watts, m, b, bound)
    assert whole.energy_j == pytest.approx(left.energy_j + right.energy_j, rel=1e-9, abs=1e-9)
    assert whole.covered_s == pytest.approx(b - a)
