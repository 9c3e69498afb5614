"""Soak: 20 agents polled for a long simulated time with random changes and faults.

The suite runs a short soak (TELZINO_SOAK_POLLS, default 300 polls);
`scripts/soak` runs a simulated week (10,080 polls at 60 s) and prints the report.
Asserted: every state change the fake made shows at that agent's next
successful poll; status requests equal polls x agents plus the retries after
expired tokens; events fired equal the transitions Home Assistant saw; memory
after warm-up grows by under 1 MB; no task or timer is left behind (the
test harness's own check at teardown).
"""

import asyncio
from datetime import timedelta
import gc
import os
import random
import time
import tracemalloc

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import storage
import pytest

from custom_components.telzino.api import RegistrationState
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
]
STATE_NAMES = list(STATES)
REFRESHING = {"REGISTERING_STATE", "AUTHENTICATING_STATE"}

pytestmark = [pytest.mark.soak, pytest.mark.slow]


def can_receive_calls(
    truth: str,
    agent_id: str,
    binding_until: dict[str, float | None],
    fake: FakeTelzino,
) -> bool:
    """Tell whether the agent is registered, or refreshing within its binding."""
    if truth == "REGISTERED_STATE":
        binding_until[agent_id] = fake.agents[agent_id].expires
        return True
    until = binding_until.get(agent_id)
    if truth in REFRESHING and until is not None and time.time() < until:
        return True
    binding_until.pop(agent_id, None)
    return False


def forget_harness_storage_writes() -> None:
    """Empty the mocked storage's record of every write it was called with."""
    storage.Store._async_write_data.reset_mock()  # type: ignore[attr-defined]


async def test_soak(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Random changes and faults over many polls: every change seen, nothing leaks."""
    polls = int(os.environ.get("TELZINO_SOAK_POLLS", "300"))
    warm_up = polls // 3
    rng = random.Random(20261127)  # noqa: S311  # seeded: a failure can be replayed
    # The harness runs the loop in debug mode, which keeps a traceback for every
    # callback: too slow for thousands of polls, and it would read as growth.
    asyncio.get_running_loop().set_debug(False)
    fake.clock = time.time  # frozen with Home Assistant's clock
    fake.close_connections = True
    agents = fake.add_agents(AGENT_COUNT)
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

    events_fired = 0
    last_fired: dict[str, str] = {}

    @callback
    def count_events(event: Event[EventStateChangedData]) -> None:
        """Count event entity firings: a new timestamp, not a return from unavailable."""
        nonlocal events_fired
        new = event.data["new_state"]
        if new is None or new.domain != "event":
            return
        if new.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            return
        if last_fired.get(new.entity_id) != new.state:
            last_fired[new.entity_id] = new.state
            events_fired += 1

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, count_events)
    last_seen = dict.fromkeys(ids, "REGISTERED_STATE")
    # The event entity's view, modelled here: can the agent receive calls (a
    # refresh counts while the binding seen last holds), and in which state.
    last_reading = dict.fromkeys(ids, (True, "registered"))
    binding_until = {agent_id: fake.agents[agent_id].expires for agent_id in ids}
    expected_events = 0
    transitions = changes = agent_faults = outages = token_expiries = 0
    fake.reset_stats()
    for index in range(polls):
        if index == warm_up:
            forget_harness_storage_writes()
            gc.collect()
            tracemalloc.start(TRACE_FRAMES)
            baseline = tracemalloc.take_snapshot().filter_traces(NOT_HARNESS)
        failing: set[str] = set()
        for agent_id in ids:
            if rng.random() < 0.03:
                fake.set_state(agent_id, rng.choice(STATE_NAMES))
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
                can_receive_calls(truth, agent_id, binding_until, fake),
                RegistrationState.from_api(truth).value,
            )
            if reading != last_reading[agent_id] and not (
                reading[0] and last_reading[agent_id][0]
            ):
                expected_events += 1
            last_reading[agent_id] = reading

    forget_harness_storage_writes()
    gc.collect()
    growth = sum(
        stat.size_diff
        for stat in tracemalloc.take_snapshot()
        .filter_traces(NOT_HARNESS)
        .compare_to(baseline, "filename")
    )

    tracemalloc.stop()
    unsubscribe()
    retries = fake.stats.responses[STATUS, 401]
    report = {
        "polls": polls,
        "simulated days": round(polls / 1440, 2),
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
    }
    print("\nsoak report: " + ", ".join(f"{k}: {v}" for k, v in report.items()))  # noqa: T201

    assert fake.stats.requests[STATUS] == polls * AGENT_COUNT + retries
    assert events_fired == expected_events
    assert growth < 1024 * 1024
    assert coordinator.last_update_success
