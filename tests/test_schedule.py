"""The rolling read schedule, step by step, outside Home Assistant."""

from datetime import UTC, datetime, timedelta

from custom_components.telzino.schedule import ReadSchedule

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def seconds(value: float) -> timedelta:
    """Return a timedelta of `value` seconds."""
    return timedelta(seconds=value)


def test_reads_spread_over_the_interval_oldest_first() -> None:
    """All at once at first; then each agent once an interval, a quarter per step.

    No limit is known: four steps an interval, 15 s apart at a minute.
    """
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(12)]
    schedule.sync(agents)
    looks, reads = schedule.plan(NOW, [], None, sustained=None, probe=False)
    assert (looks, sorted(reads)) == ([], sorted(agents))
    schedule.done(NOW, reads, (), len(reads))
    # 12 agents a minute: three every 15 s.
    step = schedule.next_step(NOW, None)
    assert step == NOW + seconds(15)
    read_at: dict[str, datetime] = {}
    batches: list[int] = []
    now = step
    while now < NOW + 2 * MINUTE:
        _, reads = schedule.plan(now, [], None, sustained=None, probe=False)
        schedule.done(now, reads, (), len(reads))
        batches.append(len(reads))
        for agent_id in reads:
            read_at.setdefault(agent_id, now)
        now = schedule.next_step(now, None)
    assert batches == [3] * 7
    # Each agent read in the first minute of steps, the oldest first.
    assert sorted(read_at) == sorted(agents)
    assert max(read_at.values()) == NOW + MINUTE
    assert schedule.effective_interval == MINUTE


def test_a_budget_stretches_the_interval_and_looks_come_first() -> None:
    """Looks first; reads get what is left; the effective interval says how long."""
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(100)]
    schedule.sync(agents)
    # 1 request a second allows 100 agents every 100 s, not every 60 s.
    looks, reads = schedule.plan(NOW, [], 1.0, sustained=1.0, probe=False)
    # A budget known at the first step: a step's worth at once (the oldest).
    assert (looks, reads) == ([], agents[-5:][::-1])
    schedule.done(NOW, reads, (), 5)
    assert schedule.effective_interval == seconds(100)
    assert not schedule.looks_allowed(0.05)  # 1.8 requests an agent-hour
    assert schedule.looks_allowed(1.0)
    later = NOW + seconds(5)
    looks, reads = schedule.plan(
        later, ["agent50", "gone"], 1.0, sustained=1.0, probe=False
    )
    assert looks == ["agent50"]  # an agent no longer scheduled is not looked at
    assert len(reads) == 4
    assert "agent50" not in reads
    schedule.done(later, [*looks, *reads], (), 5)
    # Held back: refunded, read first next time.
    then = later + seconds(5)
    _, reads = schedule.plan(then, [], 1.0, sustained=1.0, probe=False)
    schedule.done(then, (), reads, 0)
    _, again = schedule.plan(then + seconds(5), [], 1.0, sustained=1.0, probe=False)
    assert again[: len(reads)] == reads
    # An hour later the looks are forgotten.
    assert schedule.look_rate(later) > 0
    assert schedule.look_rate(later + timedelta(hours=2)) == 0


def test_what_the_window_spares_goes_at_once_at_first() -> None:
    """A budget known at setup: what its window spares is read at once, then its pace.

    Not after a wait: once the API asked to wait, requests come back one by one.
    """
    agents = [f"agent{n}" for n in range(100)]
    schedule = ReadSchedule(MINUTE)
    schedule.sync(agents)
    _, reads = schedule.plan(NOW, [], 1.0, sustained=1.0, probe=False, spare=30.4)
    assert len(reads) == 30
    schedule.done(NOW, reads, (), 30)
    _, reads = schedule.plan(
        NOW + seconds(5), [], 1.0, sustained=1.0, probe=False, spare=30
    )
    assert len(reads) == 5
    held = ReadSchedule(MINUTE)
    held.sync(agents)
    held.plan(NOW, [], None, sustained=None, probe=False)
    held.hold(NOW + seconds(30))
    _, reads = held.plan(
        NOW + seconds(30), [], 1.0, sustained=1.0, probe=False, spare=30
    )
    assert len(reads) == 1


def test_a_probe_reads_one_agent() -> None:
    """After an outage one request asks whether the API is back."""
    schedule = ReadSchedule(MINUTE)
    schedule.sync(["a", "b", "c"])
    looks, reads = schedule.plan(NOW, ["a"], None, sustained=None, probe=True)
    assert (looks, len(reads)) == ([], 1)


def test_no_agents_no_steps_to_speak_of() -> None:
    """An account with nothing to watch steps once an interval (for its list)."""
    schedule = ReadSchedule(MINUTE)
    schedule.sync([])
    assert schedule.plan(NOW, [], None, sustained=None, probe=False) == ([], [])
    assert schedule.next_step(NOW, None) == NOW + MINUTE
    assert schedule.effective_interval == MINUTE
