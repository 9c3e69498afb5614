"""Benchmark: how soon a lost registration is seen, and whether alerts can be trusted.

Run by `scripts/bench --detection`; not part of the test suite. A simulated day
under frozen time: 20 agents driven by the fake API's registrant model, which
replays the real OpenSIPS (3600 s registrations, a 100 s timer, refreshes a
tick late as often as recorded; a short
profile with TELZINO_DETECTION_PROFILE=short), a 60 s polling interval, and the same random
scenario twice, once with plain interval polling and once with the refresh
watch: refresh failures of each kind, slow registrars, changes of SIP settings,
registrations disabled and enabled again, API outages.

Ground truth comes from the model's own history. A loss begins when the API
first shows the agent unable to receive calls (any state but registered or a
refresh in progress, with the registration enabled) and ends when it is
registered again. Measured per loss: the delay until the Registered sensor is
off and `lost` has fired; a loss lasting a full interval that is never shown
is missed. A false alarm is the sensor going off, or `lost` firing, while the
agent could receive calls or its registration was disabled.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import math
import os
import random
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, STATE_OFF
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from scripts.fake_telzino import LATE_TICK_SHARE, STATUS, FakeTelzino, Registrant, serve
from tests.common import make_entry, registered_entity_ids, setup_entry

AGENTS = 20
HOURS = float(os.environ.get("TELZINO_DETECTION_HOURS", "24"))
INTERVAL = 60
# The registrant's profile: OpenSIPS' defaults (3600 s registrations, a 100 s
# timer), or TELZINO_DETECTION_PROFILE=short (120 s, a 20 s timer, as the demo).
PROFILES = {"default": (3600, 100.0), "short": (120, 20.0)}
PROFILE = os.environ.get("TELZINO_DETECTION_PROFILE", "default")
REGISTRATION, TIMER = PROFILES[PROFILE]
START = 1_795_800_030.0
REFRESHING = {"REGISTERING_STATE", "AUTHENTICATING_STATE"}


@dataclass
class Run:
    """What one polling strategy showed over the scenario."""

    name: str
    off_at: dict[str, list[float]] = field(default_factory=dict)
    lost_at: dict[str, list[float]] = field(default_factory=dict)
    requests: int = 0
    cpu: float = 0.0
    states: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    outages: list[tuple[float, float]] = field(default_factory=list)


def scenario(rng: random.Random, agent_ids: list[str]) -> list[tuple[float, str, str]]:
    """Return (time from start, agent or "*", action) in time order."""
    end = HOURS * 3600
    actions: list[tuple[float, str, str]] = []
    for agent_id in agent_ids:
        at = rng.uniform(600, 3600)
        while at < end - 1800:
            kind = rng.choice(
                ["rejects", "errors", "silent", "slow", "reconfigure", "disable"]
            )
            if kind in ("rejects", "errors", "silent", "slow"):
                # The registrar misbehaves for a while: refreshes in that time fail.
                actions.append((at, agent_id, kind))
                actions.append((at + rng.uniform(1800, 5400), agent_id, "answers"))
            elif kind == "reconfigure":
                actions.append((at, agent_id, "reconfigure"))
            else:
                actions.append((at, agent_id, "disable"))
                actions.append((at + rng.uniform(600, 2400), agent_id, "enable"))
            at += rng.uniform(3 * 3600, 7 * 3600)
    at = rng.uniform(1800, 7200)
    while at < end - 600:
        actions.append((at, "*", f"outage:{rng.uniform(60, 300):.0f}"))
        at += rng.uniform(4 * 3600, 8 * 3600)
    return sorted(actions)


async def run_day(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, *, watch: bool
) -> tuple[Run, FakeTelzino]:
    """Play the scenario against a fresh fake API; return what Home Assistant showed."""
    freezer.move_to(datetime.fromtimestamp(START, UTC))
    fake = FakeTelzino(clock=time.time)
    fake.close_connections = True
    rng = random.Random(20261127)  # noqa: S311  # the same scenario for both runs
    # Their IDs from a generator of their own: the scenario draws what it drew.
    agents = fake.add_agents(AGENTS, rng=random.Random("agent IDs"))  # noqa: S311
    for agent in agents:
        agent.registration_timeout = REGISTRATION
    ids = [agent.id for agent in agents]
    for agent_id in ids:
        fake.simulate(
            agent_id,
            timer_interval=TIMER,
            phase=rng.uniform(0, TIMER),
            late_tick_share=LATE_TICK_SHARE,
        )
    actions = scenario(rng, ids)
    run = Run("refresh watch" if watch else "interval polling")
    names = registered_entity_ids(agents)
    events = {
        f"event.{a.name.lower().replace(' ', '_')}_registration": a.id for a in agents
    }

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if new is None:
            return
        if agent_id := names.get(new.entity_id):
            run.states.setdefault(agent_id, []).append((time.time(), new.state))
        if (agent_id := names.get(new.entity_id)) and new.state == STATE_OFF:
            if old is None or old.state != STATE_OFF:
                run.off_at.setdefault(agent_id, []).append(time.time())
        elif (agent_id := events.get(new.entity_id)) and (
            new.attributes.get("event_type") == "lost"
            and (old is None or old.state != new.state)
        ):
            run.lost_at.setdefault(agent_id, []).append(time.time())

    async with serve(fake) as url:
        entry = await setup_entry(
            hass, make_entry(url, ids, scan_interval=INTERVAL, watch_refresh=watch)
        )
        unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
        fake.reset_stats()
        cpu = time.thread_time()
        outage_until = 0.0
        for second in range(1, int(HOURS * 3600) + 1):
            now = START + second
            while actions and START + actions[0][0] <= now:
                _, agent_id, action = actions.pop(0)
                if agent_id == "*":
                    outage_until = now + float(action.partition(":")[2])
                    run.outages.append((now, outage_until))
                    fake.inject(STATUS, status=503)
                    continue
                model = fake.registrants[agent_id]
                agent = fake.agents[agent_id]
                if action in ("reconfigure", "disable", "enable"):
                    getattr(model, action)(agent, now)
                else:
                    model.set_behaviour(agent, action, now)  # type: ignore[arg-type]
            if outage_until and now >= outage_until:
                fake.clear_faults()
                outage_until = 0.0
            freezer.tick(timedelta(seconds=1))
            async_fire_time_changed(hass)
            await hass.async_block_till_done(wait_background_tasks=True)
        run.cpu = time.thread_time() - cpu
        run.requests = fake.stats.requests[STATUS]
        unsubscribe()
        await hass.config_entries.async_unload(entry.entry_id)
    end = START + HOURS * 3600
    for agent_id in ids:
        fake.registrants[agent_id].sync(fake.agents[agent_id], end)
    return run, fake


@dataclass
class Loss:
    """One period in which an agent could not receive calls."""

    start: float
    end: float
    at_refresh: bool


@dataclass
class Truth:
    """One agent's day as the model lived it."""

    losses: list[Loss] = field(default_factory=list)
    # When it could receive calls, and when its registration was disabled.
    receiving: list[tuple[float, float]] = field(default_factory=list)
    disabled: list[tuple[float, float]] = field(default_factory=list)


def truth(model: Registrant, end: float) -> Truth:
    """Split the model's history into losses, receiving and disabled periods."""
    day = Truth()
    kind, since, at_refresh = "receiving", START, False
    previous = "REGISTERED_STATE"
    for at, state, enabled in model.history:
        if state == "REGISTERED_STATE" or (state in REFRESHING and kind == "receiving"):
            now_kind = "receiving"
        elif not enabled or kind == "disabled":
            # Until registered again after enabling: part of the user's choice.
            now_kind = "disabled"
        else:
            now_kind = "loss"
        if now_kind != kind:
            close(day, kind, since, at, at_refresh=at_refresh)
            kind, since = now_kind, at
            at_refresh = previous in REFRESHING
        previous = state
    close(day, kind, since, end, at_refresh=at_refresh)
    return day


def close(day: Truth, kind: str, start: float, end: float, *, at_refresh: bool) -> None:
    """Record a finished period."""
    if kind == "loss":
        day.losses.append(Loss(start, end, at_refresh))
    elif kind == "receiving":
        day.receiving.append((start, end))
    else:
        day.disabled.append((start, end))


def judge(run: Run, fake: FakeTelzino) -> dict[str, Any]:
    """Compare what Home Assistant showed with the model's history."""
    end = START + HOURS * 3600
    delays: list[float] = []
    delays_at_refresh: list[float] = []
    missed = false_alarms = losses_total = 0
    for agent_id, model in fake.registrants.items():
        day = truth(model, end)
        offs = run.off_at.get(agent_id, [])
        losts = run.lost_at.get(agent_id, [])
        for loss in day.losses:
            losses_total += 1
            shown = [t for t in offs if loss.start <= t <= loss.end + 1]
            fired = [t for t in losts if loss.start <= t <= loss.end + 1]
            # During an API outage the API shows nothing: it first shows a
            # loss that began then when the outage is over.
            shows_at = max(
                [loss.start]
                + [stop for start, stop in run.outages if start <= loss.start < stop]
            )
            if shown and fired:
                delay = max(0.0, max(shown[0], fired[0]) - shows_at)
                delays.append(delay)
                if loss.at_refresh:
                    delays_at_refresh.append(delay)
            elif loss.end - loss.start >= INTERVAL:
                missed += 1
        # Off while it could receive calls; `lost` then or while disabled. A
        # second of grace: Home Assistant sees the model a step later.
        false_alarms += sum(
            any(start + 1 < moment < stop for start, stop in day.receiving)
            for moment in offs
        )
        false_alarms += sum(
            any(
                start + 1 < moment < stop
                for start, stop in day.receiving + day.disabled
            )
            for moment in losts
        )
    agent_hours = AGENTS * HOURS
    return {
        "losses": losses_total,
        "losses at refresh": len(delays_at_refresh),
        "p50": percentile(delays_at_refresh, 50),
        "p95": percentile(delays_at_refresh, 95),
        "max": max(delays_at_refresh, default=math.nan),
        "p95 all": percentile(delays, 95),
        "false alarms": false_alarms,
        "missed": missed,
        "requests per agent-hour": run.requests / agent_hours,
        "CPU ms per agent-hour": run.cpu * 1000 / agent_hours,
    }


def percentile(values: list[float], pct: int) -> float:
    """Return the pct-th percentile (nearest rank), NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


RESULTS: list[tuple[str, dict[str, Any]]] = []


@pytest.mark.parametrize("watch", [False, True], ids=["interval", "watch"])
async def test_detection(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    watch: bool,
) -> None:
    """Play the day with one strategy; after both, print the comparison."""
    run, fake = await run_day(hass, freezer, watch=watch)
    RESULTS.append((run.name, judge(run, fake)))
    if os.environ.get("TELZINO_DETECTION_DEBUG"):
        explain(run, fake)
    if len(RESULTS) < 2:
        return
    results = RESULTS
    fixed, watched = results[0][1], results[1][1]
    lines = [
        (
            f"Detection ({AGENTS} agents, {HOURS:g} h simulated, {INTERVAL} s interval, "
            f"{REGISTRATION} s registrations, {TIMER:g} s timer)"
        ),
        "",
        (
            "| strategy | losses (at refresh) | delay p50 / p95 / max at refresh (s) "
            "| p95 all losses (s) | false alarms | missed | requests per agent-hour "
            "| CPU ms per agent-hour |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results:
        lines.append(
            f"| {name} | {r['losses']} ({r['losses at refresh']}) "
            f"| {r['p50']:.1f} / {r['p95']:.1f} / {r['max']:.1f} | {r['p95 all']:.1f} "
            f"| {r['false alarms']} | {r['missed']} "
            f"| {r['requests per agent-hour']:.1f} | {r['CPU ms per agent-hour']:.1f} |"
        )
    ratio = watched["requests per agent-hour"] / fixed["requests per agent-hour"]
    lines += [
        "",
        (
            f"detection p95: {watched['p95']:.1f} s, false alarms: "
            f"{watched['false alarms']}, missed: {watched['missed']}, "
            f"request ratio: {ratio:.2f}"
        ),
    ]
    print("\n\n" + "\n".join(lines))


def explain(run: Run, fake: FakeTelzino) -> None:
    """Print the missed losses and false alarms of a run (TELZINO_DETECTION_DEBUG)."""
    end = START + HOURS * 3600
    for agent_id, model in fake.registrants.items():
        day = truth(model, end)
        offs = run.off_at.get(agent_id, [])
        losts = run.lost_at.get(agent_id, [])
        for loss in day.losses:
            shown = [t for t in offs if loss.start <= t <= loss.end + 1]
            fired = [t for t in losts if loss.start <= t <= loss.end + 1]
            if not (shown and fired) and loss.end - loss.start >= INTERVAL:
                print(
                    "MISSED",
                    run.name,
                    loss.start - START,
                    loss.end - loss.start,
                    shown,
                    fired,
                )
                print(
                    "  history",
                    [
                        (round(t - START, 1), s, e)
                        for t, s, e in model.history
                        if loss.start - 200 < t < loss.end + 200
                    ],
                )
                print(
                    "  offs",
                    [round(t - START, 1) for t in offs],
                    "losts",
                    [round(t - START, 1) for t in losts],
                )
                print(
                    "  states",
                    [
                        (round(t - START, 1), st)
                        for t, st in run.states.get(agent_id, [])
                        if loss.start - 300 < t < loss.end + 300
                    ],
                )
        for loss in day.losses:
            shown = [t for t in offs if loss.start <= t <= loss.end + 1]
            if loss.at_refresh and shown and shown[0] - loss.start > 10:
                print(
                    "SLOW",
                    run.name,
                    round(loss.start - START, 1),
                    round(shown[0] - loss.start, 1),
                    [
                        (round(t - START, 1), st)
                        for t, st in run.states.get(agent_id, [])
                        if loss.start - 60 < t < loss.start + 60
                    ],
                    [
                        (round(t - START, 1), s)
                        for t, s, _ in model.history
                        if loss.start - 3700 < t < loss.end + 10
                    ],
                )
        for moment in offs:
            if any(start + 1 < moment < stop for start, stop in day.receiving):
                print(
                    "FALSE OFF",
                    run.name,
                    round(moment - START, 1),
                    [
                        (round(t - START, 1), s, e)
                        for t, s, e in model.history
                        if moment - 400 < t < moment + 100
                    ],
                )
