"""The fault-injection harness, a few trials (the README command runs 50):
each kills ``ragrev upgrade head`` of the multi-store chain — by fault
injection at each kind of point, and by time — then checks that the rerun
reaches the uninterrupted run's content hashes in every store with every
chat message in exactly one place, and that ``downgrade base`` (itself
killed once in two of the trials) gives back the initial hashes.

The kill points are taken at fixed fractions of the reference run's trace,
so that they land in different stores and kinds of step whatever the exact
count of points; ``python -m tests.reliability.harness`` draws them at random."""
from __future__ import annotations

import pytest

from tests.reliability.harness import Kill


def at(trace: list[str], point: str, fraction: float) -> Kill:
    """The fault kill at the ``point`` arrival nearest ``fraction`` of the way through ``trace``."""
    count = trace.count(point)
    return Kill("fault", point, max(1, round(count * fraction)))


PLANS = {
    "applied-then-checkpoint-in-downgrade": lambda ref: (
        [at(ref.trace, "applied", 0.6)], [at(ref.down_trace, "checkpoint", 0.5)]),
    "checkpoint-then-time": lambda ref: (
        [at(ref.trace, "checkpoint", 0.8), Kill("time", delay=round(ref.seconds * 0.3, 2))], []),
    "time-then-time-in-downgrade": lambda ref: (
        # 0.4, not later: with the smaller chain a run is mostly start-up and a few data steps, and a
        # trial on a less loaded moment than the reference's can finish before 0.55 of it (seen: 30 s)
        [Kill("time", delay=round(ref.seconds * 0.4, 2))], [Kill("time", delay=round(ref.down_seconds * 0.4, 2))]),
    "stamp-and-step": lambda ref: ([at(ref.trace, "stamp", 0.4), at(ref.trace, "step", 0.5)], []),
}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_a_killed_run_recovers(harness, plan):
    kills, down = PLANS[plan](harness.reference)
    trial = harness.trial(sorted(PLANS).index(plan) + 1000, kills, down)
    assert any(k.outcome == "killed" for k in trial.kills), trial.describe()
    assert trial.recovered, f"{trial.describe()}:\n" + "\n".join(trial.problems)
