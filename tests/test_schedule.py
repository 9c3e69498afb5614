"""The rolling read schedule, step by step, outside Home Assistant."""

from datetime import UTC, datetime, timedelta
import itertools
import random

import pytest

from custom_components.telzino.coordinator import READ_SLACK
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
    read_at: dict[str, list[datetime]] = {agent_id: [NOW] for agent_id in agents}
    batches: list[int] = []
    now = step
    while now < NOW + 3 * MINUTE:
        _, reads = schedule.plan(now, [], None, sustained=None, probe=False)
        schedule.done(now, reads, (), len(reads))
        batches.append(len(reads))
        for agent_id in reads:
            read_at[agent_id].append(now)
        now = schedule.next_step(now, None)
    assert set(batches) == {3}
    # Each agent read once a minute, give or take half a step.
    gaps = [b - a for times in read_at.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= seconds(15)  # the first round, spread out
    assert max(gaps) <= MINUTE + seconds(7.5)
    assert all(len(times) >= 3 for times in read_at.values())
    assert schedule.effective_interval == MINUTE


def test_agents_looked_at_off_the_beat_are_read_again_within_their_interval() -> None:
    """Looks read agents between steps: no agent's next read comes late anyway.

    Without a known limit steps are 15 s apart; an agent looked at between
    two is due an interval later and must not wait for the step after that
    (up to 72 s between reads before), nor be read early round after round.
    """
    rng = random.Random(19)  # noqa: S311  # a fixed scenario
    reads = 0
    gaps: list[timedelta] = []
    for _ in range(50):
        schedule = ReadSchedule(MINUTE)
        agents = [f"agent{n}" for n in range(20)]
        schedule.sync(agents)
        looks_at = sorted(NOW + seconds(rng.uniform(60, 600)) for _ in range(8))
        last: dict[str, datetime] = {}
        now = NOW
        while now < NOW + seconds(700):
            step = schedule.next_step(now, None) if last else now
            due_looks: list[str] = []
            if looks_at and looks_at[0] < step:
                step, due_looks = looks_at.pop(0), [rng.choice(agents)]
            now = step
            looks, planned = schedule.plan(
                now, due_looks, None, sustained=None, probe=False
            )
            schedule.done(now, [*looks, *planned], (), len(looks) + len(planned))
            reads += len(planned)
            for agent_id in [*looks, *planned]:
                if agent_id in last and last[agent_id] > NOW + MINUTE:
                    gaps.append(now - last[agent_id])
                last[agent_id] = now
    assert max(gaps) <= MINUTE + seconds(1)
    # The first round, then about one read an agent-minute: 50 runs of 20
    # agents over 700 s.
    assert reads <= 1.02 * 50 * 20 * (1 + 700 / 60)


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
    assert schedule.beyond_reads_rate(later) > 0
    assert schedule.beyond_reads_rate(later + timedelta(hours=2)) == 0


def test_the_agent_list_slows_the_reads_within_their_interval() -> None:
    """Requests the schedule did not plan leave the reads less; none comes later than said.

    A reading is current for the effective interval and a read's lag; the
    agent list's pages (a third of this budget) must stretch that interval,
    and the lag covers the reads they held back. 100 agents at 0.1 requests
    a second, 20 pages every 10 minutes: reads every 1,500 s, not the 1,000 s
    the pace alone allows.
    """
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(100)]
    schedule.sync(agents)
    read_at: dict[str, datetime] = {}
    late: list[timedelta] = []
    now, listed = NOW, NOW - timedelta(hours=1)
    while now < NOW + timedelta(hours=4):
        pages = 0
        if now - listed >= 10 * MINUTE:
            listed, pages = now, 20
            schedule.spent(now, pages)
        _, reads = schedule.plan(now, [], 0.1, sustained=0.1, probe=False)
        schedule.done(now, reads, (), len(reads))
        for agent_id in reads:
            if (last := read_at.get(agent_id)) is not None and now > NOW + timedelta(
                hours=1
            ):
                late.append(now - last - schedule.effective_interval)
            read_at[agent_id] = now
        now = schedule.next_step(now, 0.1)
    assert abs(schedule.effective_interval - seconds(1500)) < seconds(60)
    # Late by the time the pages held the reads back at most: 20 s / 0.1.
    assert schedule.read_lag(0.1) == seconds(5 + 200)
    assert max(late) <= schedule.read_lag(0.1)
    assert schedule.read_lag(None) == MINUTE / 4


def test_reads_come_within_the_bound_however_the_looks_fall() -> None:
    """No agent waits for its read longer than the effective interval and a read's lag.

    A reading is shown that long without a new read; past it the agent is
    unavailable. 150 agents at 0.27 requests a second, each looked at when
    its registration is refreshed (every 3,450 s, a third of them a tick
    late, so looked at twice): the looks fall as refreshes do, and the
    reads' cycle drifts past what the pace alone gives (reads came up to
    67 s past the bound before the lag counted it). Checked from the second
    hour on, the first having shown how late the reads come.
    """
    rng = random.Random(7)  # noqa: S311  # a fixed scenario
    pace, period, tick = 0.2722, 3450.0, 100.0
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(150)]
    schedule.sync(agents)
    look_at = {agent_id: rng.uniform(0, period) for agent_id in agents}
    looked_once: set[str] = set()
    last: dict[str, float] = {}
    waits: list[float] = []
    t = 0.0
    while t < 3 * 3600:
        now = NOW + seconds(t)
        if t >= 3600:
            bound = schedule.effective_interval + schedule.read_lag(pace)
            waits += [t - at - bound.total_seconds() for at in last.values()]
        due = sorted((a for a, at in look_at.items() if at <= t), key=look_at.get)
        looks, reads = schedule.plan(
            now,
            due,
            pace,
            sustained=pace,
            probe=False,
            looking={a: NOW + seconds(at) for a, at in look_at.items()},
        )
        for agent_id in looks:
            if agent_id in looked_once:
                looked_once.discard(agent_id)
                look_at[agent_id] += period - tick
            elif rng.random() < 1 / 3:
                # The refresh comes a tick late: looked at again then.
                looked_once.add(agent_id)
                look_at[agent_id] += tick
            else:
                look_at[agent_id] += period
        schedule.done(now, [*looks, *reads], (), len(looks) + len(reads))
        last.update(dict.fromkeys([*looks, *reads], t))
        step = schedule.next_step(now, pace)
        look = NOW + seconds(min(look_at.values()))
        step = min(step, max(look, schedule.next_request(now, pace)))
        t = max((step - NOW).total_seconds(), t + 1)
    # Within the slack a reading's bound adds to them.
    assert max(waits) <= READ_SLACK.total_seconds()
    # Not by a lag that covers anything: the latest reads came about a minute
    # past the interval (11 minutes), and the lag is that and a step.
    assert seconds(60) < schedule.read_lag(pace) < seconds(70)


def test_a_wait_the_api_asked_for_does_not_stretch_the_bound_after_it() -> None:
    """Reads held back by a Retry-After are late by the wait; the lag does not keep it.

    100 agents at 0.1 requests a second (each read every 1,000 s), then half
    an hour of waiting (told again at every step, as the coordinator does):
    the reads that follow come half an hour late, and the read lag must not
    promise readings half an hour more for the hour after.
    """
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(100)]
    schedule.sync(agents)
    wait = (NOW + timedelta(hours=2), NOW + timedelta(hours=2, minutes=30))
    read_at: dict[str, datetime] = {}
    ages: list[timedelta] = []
    lags: list[timedelta] = []
    now = NOW
    while now < NOW + timedelta(hours=4):
        if wait[0] <= now < wait[1]:
            schedule.hold(now, wait[1])
            now += seconds(5)
            continue
        _, reads = schedule.plan(now, [], 0.1, sustained=0.1, probe=False)
        schedule.done(now, reads, (), len(reads))
        if wait[1] <= now < wait[1] + timedelta(hours=1):
            ages += [now - read_at[agent_id] for agent_id in reads]
            lags.append(schedule.read_lag(0.1))
        read_at.update(dict.fromkeys(reads, now))
        now = schedule.next_step(now, 0.1)
    assert schedule.effective_interval == seconds(1000)
    assert max(ages) >= seconds(1000) + timedelta(minutes=30)
    assert max(lags) < seconds(60)


def test_the_effective_interval_is_right_soon_after_a_restart() -> None:
    """Looks count over the time since the first step, not over an hour not yet passed.

    1,000 agents at 1.6 requests a second, with looks taking 0.4 a second
    from the start: the reads get 1.2 a second, each agent every 833 s. A
    quarter hour after a (re)start the effective interval already says so
    (the looks counted over the whole 65-minute window showed 663 s).
    """
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(1000)]
    schedule.sync(agents)
    looked = itertools.cycle(agents)
    now = NOW
    while now < NOW + timedelta(minutes=15):
        looks, reads = schedule.plan(
            now, [next(looked), next(looked)], 1.6, sustained=1.6, probe=False
        )
        schedule.done(now, [*looks, *reads], (), len(looks) + len(reads))
        now += seconds(5)
    assert abs(schedule.effective_interval - seconds(833)) < seconds(20)


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
    held.hold(NOW, NOW + seconds(30))
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


def test_a_new_agent_is_read_at_the_next_step() -> None:
    """An agent added to the watch list (never read) is read a second later."""
    schedule = ReadSchedule(MINUTE)
    schedule.sync(["old"])
    schedule.plan(NOW, [], None, sustained=None, probe=False)
    schedule.done(NOW, ["old"], (), 1)
    schedule.sync(["old", "new"])
    assert schedule.next_step(NOW, None) == NOW + seconds(1)
    _, reads = schedule.plan(NOW + seconds(1), [], None, sustained=None, probe=False)
    assert reads == ["new"]


def test_requests_sent_together_wait_until_the_pace_has_saved_them() -> None:
    """The agent list's pages go once the pace has saved as many, and are paid again.

    At the pace a step keeps about one step's credit (8 requests at 1.6 a
    second): 10 pages at once would overrun a sliding window run at its
    limit, both the window that ends with them and the one that begins with
    them. So the reads wait 10 / 1.6 s before the pages and as long after.
    """
    schedule = ReadSchedule(MINUTE)
    schedule.sync([f"agent{n}" for n in range(1000)])
    now = NOW
    for _ in range(20):
        _, reads = schedule.plan(now, [], 1.6, sustained=1.6, probe=False)
        schedule.done(now, reads, (), len(reads))
        now = schedule.next_step(now, 1.6)
    due = now
    while not schedule.save_for(now, 10, 1.6):
        _, reads = schedule.plan(now, [], 1.6, sustained=1.6, probe=False)
        assert reads == []
        schedule.done(now, reads, (), 0)
        now = schedule.next_step(now, 1.6)
    assert seconds(5) <= now - due <= seconds(10 / 1.6)
    schedule.spent(now, 10)
    _, reads = schedule.plan(now, [], 1.6, sustained=1.6, probe=False)
    schedule.done(now, reads, (), len(reads))
    assert reads == []
    later = schedule.next_step(now, 1.6)
    _, reads = schedule.plan(later, [], 1.6, sustained=1.6, probe=False)
    assert reads
    assert seconds(5) <= later - now <= seconds(10 / 1.6 + 1)
    # A reading's bound covers both holds of the reads.
    assert schedule.read_lag(1.6) >= seconds(5 + 2 * 10 / 1.6)
    # A saving that the next step does not ask for again lapses (the list
    # went unsaved, say): the reads do not wait for it.
    now = later + seconds(30)
    assert not schedule.save_for(now, 1000, 1.6)
    assert schedule.plan(now, [], 1.6, sustained=1.6, probe=False)[1] == []
    now += seconds(5)
    assert schedule.plan(now, [], 1.6, sustained=1.6, probe=False)[1]


def test_the_effective_interval_holds_steady_when_agents_refresh_together() -> None:
    """Agents that registered together, looked at together: the interval changes smoothly.

    A look reads an agent instead of its read when it comes within the
    agent's interval, and the fewer agents the reads have left, the shorter
    that interval. Taken from the last step's interval, the agents read by
    looks swung between all and none from one step to the next as their
    common refresh neared: the interval (shown to the user, and every
    reading's bound) between about 10 minutes and the configured one.
    """
    rng = random.Random(3)  # noqa: S311  # a fixed scenario
    pace = 0.27
    schedule = ReadSchedule(MINUTE)
    agents = [f"agent{n}" for n in range(150)]
    schedule.sync(agents)
    look_at = {
        agent_id: NOW + seconds(3000 + rng.uniform(0, 200)) for agent_id in agents
    }
    intervals: list[float] = []
    now = NOW
    while now < NOW + seconds(3000):
        horizon = now + schedule.look_horizon
        _, reads = schedule.plan(
            now,
            [],
            pace,
            sustained=pace,
            probe=False,
            looking={a: at for a, at in look_at.items() if at < horizon},
        )
        schedule.done(now, reads, (), len(reads))
        if now >= NOW + seconds(1800):
            intervals.append(schedule.effective_interval.total_seconds())
        now = max(schedule.next_step(now, pace), now + seconds(1))
    # From about 550 s (150 agents at 0.27 a second) down to the few that
    # the looks do not read, a step at a time.
    assert max(intervals) == pytest.approx(150 / pace, rel=0.05)
    assert min(intervals) > MINUTE.total_seconds()
    assert all(
        abs(later - earlier) < 0.05 * earlier
        for earlier, later in itertools.pairwise(intervals)
    )


def test_looks_due_together_go_at_once_on_what_the_window_has_left() -> None:
    """Looks beyond the pace's credit go on an announced window's room; the reads keep theirs.

    Without room (a budget learned from 429s), they wait for the pace, a few
    at a step, the reads behind them.
    """
    agents = [f"agent{n}" for n in range(100)]
    due = agents[:40]
    # The room less the 5 requests of credit the reads hold takes the looks.
    for room, looks_sent, reads_sent in ((200.0, 40, 5), (39.0, 34, 5), (0.0, 5, 0)):
        schedule = ReadSchedule(MINUTE)
        schedule.sync(agents)
        # Every agent read at setup; then five seconds of a second's pace.
        schedule.plan(NOW, [], 1.0, sustained=1.0, probe=False, spare=100)
        schedule.done(NOW, agents, (), 100)
        later = NOW + seconds(105)
        looks, reads = schedule.plan(
            later, due, 1.0, sustained=1.0, probe=False, room=room
        )
        assert (len(looks), len(reads)) == (looks_sent, reads_sent)
        schedule.done(later, [*looks, *reads], (), len(looks) + len(reads))
        # Either way the pace's credit is spent, not more: the next request
        # waits for the pace, a look on a window's room does not.
        assert schedule.next_request(later, 0.1) == later + seconds(10)
        assert schedule.next_request(later, 0.1, room=2) == later + seconds(1)
