"""Soak: 20 agents polled for a long simulated time with random changes and faults.

The suite runs a soak of 480 polls (TELZINO_SOAK_POLLS), eight simulated
hours; `scripts/soak` runs a simulated week (10,080 polls at 60 s), where the
outage history also merges old spans by hour, and prints the report (the
merging itself is tested in test_history.py).
Asserted: every state change the fake made shows at that agent's next
successful poll; status requests equal polls x agents plus the retries after
expired tokens; each agent's events fire at exactly the polls where its
reading changed (the documented rules of a binding seen registered that
still holds, modelled by `can_receive_calls`); after warm-up, memory
outside the outage history grows by under 128 KiB over the last third of the
run (settling is over by then, a leak is not), and the history holds no
more than its limits allow (one span per reading of the last day, one per
hour before) and takes no more memory than those spans; no task or timer is
left behind (the test harness's own check at teardown).
"""

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import timedelta
import gc
import logging
import os
import random
import sys
import time
import tracemalloc

from _pytest.logging import LogCaptureHandler
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import storage
import pytest

from custom_components.telzino.api import RegistrationState
from custom_components.telzino.const import REFRESH_GRACE, REFRESH_REPLY_GRACE
from custom_components.telzino.history import DAY, MERGE_INTO, RAW_FOR, Span
from custom_components.telzino.watch import DEFAULT_TIMER
from scripts.fake_telzino import AGENTS, STATES, STATUS, TOKEN, FakeTelzino
from tests.common import make_entry, setup_entry

AGENT_COUNT = 20
# The test harness's own bookkeeping is not the integration's memory: its mocked
# storage records every registry save in a Mock's call list, forever. The list
# is emptied before each snapshot, and what mock code itself allocates is
# filtered out.
TRACE_FRAMES = 4
NOT_HARNESS = [
    tracemalloc.Filter(False, "*/unittest/mock.py", all_frames=True),
    tracemalloc.Filter(
        False, "*/pytest_homeassistant_custom_component/*", all_frames=True
    ),
    tracemalloc.Filter(False, "*/_pytest/*", all_frames=True),
    tracemalloc.Filter(False, tracemalloc.__file__),
    # The oracle's own record of every event.
    tracemalloc.Filter(False, __file__),
]
HISTORY_FILE = "*/custom_components/telzino/history.py"
# What may grow outside the history over the last third of the run (a float
# per agent and poll would be 100 KiB more in the suite's 480 polls).
OTHER_GROWTH_BOUND = 128 * 1024
# One stored span in memory: the object, its six floats, its list slot.
SPAN_BYTES = sys.getsizeof(Span(0.5, 1.5, 2.5, 3.5, 4.5, 5.5)) + 6 * (
    sys.getsizeof(0.5) + 8
)
# A loss start of the last day: a float in a deque.
LOSS_START_BYTES = sys.getsizeof(0.5) + 8
STATE_NAMES = list(STATES)
REFRESHING = {"REGISTERING_STATE", "AUTHENTICATING_STATE"}

POLLS = int(os.environ.get("TELZINO_SOAK_POLLS", "480"))
# A timeout per poll (a marker's timeout outranks `-o timeout=0`), so that a
# week's soak beside another job is not cut short.
pytestmark = [
    pytest.mark.soak,
    pytest.mark.simulation,
    pytest.mark.slow,
    pytest.mark.timeout(600 * max(POLLS / 1600, 1)),
]


@dataclass
class Oracle:
    """What the documented rules remember of each agent (see docs/how-it-works.md)."""

    # When each agent was last seen registered, its REGISTER's time and its
    # `expires` then.
    seen: dict[str, tuple[float, float | None, float | None]] = field(
        default_factory=dict
    )
    # Until when the refresh seen under way since counts as one.
    refresh_until: dict[str, float] = field(default_factory=dict)
    # For a NOT_REGISTERED after it (a reload that met a refresh): until when.
    reregister_by: dict[str, float] = field(default_factory=dict)

    def forget(self, agent_id: str) -> None:
        """Forget the agent's binding: not registered, and not held."""
        self.seen.pop(agent_id, None)
        self.refresh_until.pop(agent_id, None)
        self.reregister_by.pop(agent_id, None)


def can_receive_calls(
    truth: str, agent_id: str, oracle: Oracle, fake: FakeTelzino
) -> bool:
    """Tell whether the agent is registered, or its binding seen registered still holds.

    A refresh (a REGISTER after a registration seen at the last reading):
    within 35 s of that REGISTER (a SIP transaction times out at 30 s), or
    within 5 minutes of when it was seen registered when the REGISTER's time
    did not move. NOT_REGISTERED after such a refresh, while enabled (a reload
    that met it): until the registrant's next tick (the default timer, with the
    refresh watch off) and 35 s, never past the later of the binding's expiry
    (its `expires` then plus a timer interval) and the refresh's grace, nor
    past the reading's own `expires`.
    """
    agent = fake.agents[agent_id]
    now, sent = time.time(), agent.last_register_sent
    if truth == "REGISTERED_STATE":
        oracle.forget(agent_id)
        oracle.seen[agent_id] = (now, sent, agent.expires)
        return True
    until = None
    if (seen := oracle.seen.get(agent_id)) is not None:
        seen_at, seen_sent, seen_expires = seen
        if truth in REFRESHING:
            moved = sent is not None and (seen_sent is None or sent > seen_sent)
            until = oracle.refresh_until[agent_id] = (
                sent + REFRESH_REPLY_GRACE.total_seconds()
                if moved and sent is not None
                else seen_at + REFRESH_GRACE.total_seconds()
            )
        elif (
            truth == "NOT_REGISTERED_STATE"
            and agent.enabled is not False
            and agent_id in oracle.refresh_until
        ):
            until = oracle.reregister_by.setdefault(
                agent_id, now + DEFAULT_TIMER + REFRESH_REPLY_GRACE.total_seconds()
            )
            holds = [
                t
                for t in (
                    seen_expires and seen_expires + DEFAULT_TIMER,
                    oracle.refresh_until.get(agent_id),
                )
                if t
            ]
            until = min(until, max(holds, default=until))
            if agent.expires:
                until = min(until, agent.expires)
    if until is not None and now < until:
        return True
    oracle.forget(agent_id)
    return False


def grown(
    now: tracemalloc.Snapshot, before: tracemalloc.Snapshot, only: str | None = None
) -> int:
    """Return how many bytes more are allocated now (in the file `only`)."""
    if only is not None:
        keep = [tracemalloc.Filter(True, only)]
        now, before = now.filter_traces(keep), before.filter_traces(keep)
    return sum(stat.size_diff for stat in now.compare_to(before, "filename"))


def first_difference(fired: list[int], expected: list[int]) -> str:
    """Name the first poll at which fired and expected events differ."""
    for index, (got, wanted) in enumerate(zip(fired, expected, strict=False)):
        if got != wanted:
            return f"event {index}: fired at poll {got}, expected at poll {wanted}"
    return (
        f"fired at polls {fired[len(expected) :]}, expected at {expected[len(fired) :]}"
    )


def forget_harness_records() -> None:
    """Empty what the harness keeps of the run: storage writes and log records.

    The test runner's log capture keeps every record, and a record with an
    exception keeps its frames, and the HTTP responses they held, alive.
    """
    storage.Store._async_write_data.reset_mock()  # type: ignore[attr-defined]
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogCaptureHandler):
            handler.reset()


async def test_soak(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Random changes and faults over many polls: every change seen, nothing leaks."""
    polls = POLLS
    warm_up = polls // 3
    rng = random.Random(20261127)  # noqa: S311  # seeded: a failure can be replayed
    fake.clock = time.time  # frozen with Home Assistant's clock
    fake.close_connections = True
    # Their IDs from a generator of their own: the scenario draws what it drew.
    agents = fake.add_agents(AGENT_COUNT, rng=random.Random("agent IDs"))  # noqa: S311
    ids = [agent.id for agent in agents]
    # The soak drives each refresh itself and counts its requests; the refresh
    # watch's extra looks have their own tests (test_watch.py).
    entry = await setup_entry(hass, make_entry(fake_url, ids, watch_refresh=False))
    coordinator = entry.runtime_data
    # One refresh per simulated minute, driven here rather than by the timer,
    # so that every iteration is exactly one poll (the timer is tested elsewhere).
    coordinator.update_interval = None
    entity_of = {
        agent.id: f"sensor.{agent.name.lower().replace(' ', '_')}_registration_state"
        for agent in agents
    }

    agent_of = {
        f"event.{agent.name.lower().replace(' ', '_')}_registration": agent.id
        for agent in agents
    }
    last_fired: dict[str, str] = {}
    # Per agent, the polls at which an event fired, and at which one should have.
    fired_at: dict[str, list[int]] = {agent_id: [] for agent_id in ids}
    expected_at: dict[str, list[int]] = {agent_id: [] for agent_id in ids}
    index = -1

    @callback
    def count_events(event: Event[EventStateChangedData]) -> None:
        """Note event entity firings: a new timestamp, not a return from unavailable."""
        new = event.data["new_state"]
        if new is None or new.domain != "event":
            return
        if new.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            return
        if last_fired.get(new.entity_id) != new.state:
            last_fired[new.entity_id] = new.state
            fired_at[agent_of[new.entity_id]].append(index)

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, count_events)
    last_seen = dict.fromkeys(ids, "REGISTERED_STATE")
    # The event entity's view, modelled here: can the agent receive calls (a
    # refresh counts within 35 s of its REGISTER), and in which state.
    last_reading = dict.fromkeys(ids, (True, "registered"))
    oracle = Oracle(
        seen={
            agent_id: (time.time(), None, fake.agents[agent_id].expires)
            for agent_id in ids
        }
    )
    transitions = changes = agent_faults = outages = token_expiries = 0
    fake.reset_stats()
    for index in range(polls):
        if index == warm_up:
            forget_harness_records()
            gc.collect()
            tracemalloc.start(TRACE_FRAMES)
            baseline = tracemalloc.take_snapshot().filter_traces(NOT_HARNESS)
        elif index == 2 * warm_up:
            forget_harness_records()
            gc.collect()
            middle = tracemalloc.take_snapshot().filter_traces(NOT_HARNESS)
        failing: set[str] = set()
        for agent_id in ids:
            if rng.random() < 0.03:
                state = rng.choice(STATE_NAMES)
                # A REGISTER sent at some moment before the next poll: within
                # the 35 s a refresh is given, or not.
                sent = time.time() + rng.uniform(0, 60)
                if state == "NOT_FOUND":
                    fake.set_state(agent_id, state)
                else:
                    fake.set_state(agent_id, state, last_register_sent=sent)
                changes += 1
        roll = rng.random()
        if roll < 0.04:
            agent_id = rng.choice(ids)
            fake.inject(STATUS, agent_id, status=500, times=1)
            failing.add(agent_id)
            agent_faults += 1
        elif roll < 0.05:
            fake.inject(STATUS, status=503, times=AGENT_COUNT)
            failing.update(ids)
            outages += 1
        elif roll < 0.055:
            fake.expire_tokens()
            token_expiries += 1

        freezer.tick(timedelta(seconds=60))
        await coordinator.async_refresh()
        await hass.async_block_till_done()

        for agent_id in ids:
            if agent_id in failing:
                assert hass.states.get(entity_of[agent_id]).state == STATE_UNAVAILABLE
                continue
            truth = fake.agents[agent_id].state
            assert (
                hass.states.get(entity_of[agent_id]).state
                == RegistrationState.from_api(truth).value
            ), (
                index,
                agent_id,
                failing,
                roll,
                fake.stats.requests,
                coordinator.last_update_success,
                coordinator.last_exception,
            )
            if truth != last_seen[agent_id]:
                transitions += 1
                last_seen[agent_id] = truth
            reading = (
                can_receive_calls(truth, agent_id, oracle, fake),
                RegistrationState.from_api(truth).value,
            )
            if reading != last_reading[agent_id] and not (
                reading[0] and last_reading[agent_id][0]
            ):
                expected_at[agent_id].append(index)
            last_reading[agent_id] = reading

    forget_harness_records()
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(NOT_HARNESS)
    growth = grown(snapshot, baseline)
    history_growth = grown(snapshot, baseline, only=HISTORY_FILE)
    # Outside the history, over the last third: Home Assistant's states and
    # caches settle in the first two, a leak goes on growing.
    other_growth = grown(snapshot, middle) - grown(snapshot, middle, only=HISTORY_FILE)
    tracemalloc.stop()
    unsubscribe()

    # What the history may hold by its limits, and what it holds.
    now = time.time()
    days = polls * 60 / DAY
    histories = coordinator.history.agents.values()
    max_merged = int(days * DAY / MERGE_INTO) + 1
    history_bound = len(ids) * (
        (1441 + max_merged) * SPAN_BYTES + 1440 * LOSS_START_BYTES
    )
    spans = sum(len(history.spans) for history in histories)
    held = spans * SPAN_BYTES + sum(
        len(history.loss_starts) * LOSS_START_BYTES for history in histories
    )
    merged_ok = all(
        bisect_right(history.spans, now - RAW_FOR, key=lambda span: span.end)
        <= max_merged
        for history in histories
    )
    events_fired = sum(len(polls_) for polls_ in fired_at.values())
    expected_events = sum(len(polls_) for polls_ in expected_at.values())
    retries = fake.stats.responses[STATUS, 401]
    report = {
        "polls": polls,
        "simulated days": round(days, 2),
        "state changes made": changes,
        "transitions seen": transitions,
        "events fired": events_fired,
        "events expected": expected_events,
        "one-agent faults": agent_faults,
        "outages": outages,
        "token expiries": token_expiries,
        "status requests": fake.stats.requests[STATUS],
        "expected status requests": polls * AGENT_COUNT + retries,
        "retries after 401": retries,
        "token requests": fake.stats.requests[TOKEN],
        "agent list requests": fake.stats.requests[AGENTS],
        "memory growth after warm-up (KiB)": round(growth / 1024, 1),
        "of it in the history (KiB)": round(history_growth / 1024, 1),
        "outside the history over the last third (KiB)": round(other_growth / 1024, 1),
        "history spans": spans,
        "history in memory (KiB)": round(held / 1024, 1),
        "history bound (KiB)": round(history_bound / 1024, 1),
    }
    print("\nsoak report: " + ", ".join(f"{k}: {v}" for k, v in report.items()))  # noqa: T201

    assert fake.stats.requests[STATUS] == polls * AGENT_COUNT + retries
    late_or_missing = {
        agent_id: first_difference(fired_at[agent_id], expected_at[agent_id])
        for agent_id in ids
        if fired_at[agent_id] != expected_at[agent_id]
    }
    assert not late_or_missing
    assert other_growth < OTHER_GROWTH_BOUND
    assert merged_ok
    assert history_growth <= held <= history_bound
    assert coordinator.last_update_success
