"""The drift observation budget: every text when light, at most the rate under load."""

from __future__ import annotations

import pytest

from textops.serving.sampling import ObservationBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_traffic_under_the_budget_is_observed_whole() -> None:
    clock = Clock()
    budget = ObservationBudget(per_second=50, clock=clock)
    assert all(budget.take() for _ in range(50))  # a burst of one second's worth
    assert not budget.take() and budget.skipped == 1
    for _ in range(1000):  # then 40 texts per second: every one
        clock.now += 0.025
        assert budget.take()


def test_under_load_the_rate_is_the_budget() -> None:
    clock = Clock()
    budget = ObservationBudget(per_second=100, clock=clock)
    taken = 0
    for _ in range(10_000):  # 1,000 texts per second for 10 s
        clock.now += 0.001
        taken += budget.take()
    assert 100 + 100 * 10 - 2 <= taken <= 100 + 100 * 10


def test_zero_means_every_text_and_bad_settings_are_refused() -> None:
    budget = ObservationBudget(per_second=0, clock=Clock())
    assert all(budget.take() for _ in range(1000))
    with pytest.raises(ValueError):
        ObservationBudget(per_second=-1)
