"""Benchmark: the cost of a poll in a running Home Assistant (run by scripts/bench).

Not part of the test suite (its name does not start with test_). The fake
Telzino API runs in its own process with 100 ms latency, so that the CPU time
measured here is Home Assistant's and the integration's alone.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
import json
import logging
import math
import os
import statistics
import sys
import time
from typing import Any
from unittest.mock import patch

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util

from custom_components.telzino import history
from custom_components.telzino.api import (
    DEFAULT_MAX_CONCURRENCY,
    TOKEN_AUDIENCE,
    RegistrationStatus,
    TelzinoError,
)
from custom_components.telzino.coordinator import TelzinoCoordinator
from scripts.fake_telzino import CLIENT_ID, CLIENT_SECRET
from scripts.live_ha import free_port
from tests.common import make_entry, setup_entry

LATENCY = 0.1
# Rounds per agent count (a round is a minute of the schedule: 2.6 s of wall
# time at 100 agents, 11 s at 500, 22 s at 1,000, with the bare requests).
# One round's paired difference varies by several milliseconds on this
# machine: the table shows how precisely each median is known ("±", one
# standard error). At 500 agents, 15 rounds left it as wide as the target
# (10 %) itself.
ROUNDS = {10: 20, 100: 40, 500: 30, 1000: 5}
# TELZINO_POLL_ROUNDS=N: N rounds at every agent count (a quicker, rougher run).
if rounds := os.environ.get("TELZINO_POLL_ROUNDS"):
    ROUNDS = dict.fromkeys(ROUNDS, int(rounds))
# TELZINO_POLL_AGENTS=100,500 runs those rows only.
AGENT_COUNTS = tuple(
    int(count)
    for count in os.environ.get("TELZINO_POLL_AGENTS", "").split(",")
    if count
) or tuple(ROUNDS)
# TELZINO_POLL_BARE_CLIENT=1: the coordinator's status requests made with bare
# aiohttp (the readings of setup handed back): what the steps cost besides
# the client.
BARE_CLIENT = bool(os.environ.get("TELZINO_POLL_BARE_CLIENT"))
# The integration's own CPU on top of bare aiohttp's, at most, by agent count
# (at 10 agents a refresh costs 2 ms and the share is noise; 1,000 is shown).
REST_TARGETS = {100: 0.25, 500: 0.10}
RESULTS: list[str] = []


@asynccontextmanager
async def fake_api(agents: int, latency: float) -> AsyncIterator[str]:
    """Run the fake API in a subprocess; yield its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.fake_telzino",
        "--port",
        str(free_port()),
        "--agents",
        str(agents),
        "--latency",
        str(latency),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        yield json.loads(await process.stdout.readline())["url"]
    finally:
        process.terminate()
        await process.wait()


async def counters(
    url: str, session: aiohttp.ClientSession | None = None
) -> dict[str, int]:
    """Return the fake API's request counters.

    Between measured steps, pass one session for all: a session of its own
    per call leaves a DNS resolver to be torn down in the next measured step.
    """
    if session is None:
        async with control_session() as control:
            return await counters(url, control)
    async with session.get(f"{url}/_fake/state") as response:
        requests: dict[str, int] = (await response.json())["requests"]
        return requests


def control_session() -> aiohttp.ClientSession:
    """Return a session for the bench's own requests to the fake."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
    )


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Return the counters' growth."""
    return {key: after.get(key, 0) - before.get(key, 0) for key in after}


def run_as_users_do(hass: HomeAssistant) -> None:
    """Without the harness's asyncio debug mode and INFO logging (HA logs WARNING)."""
    hass.loop.set_debug(False)
    logging.getLogger().setLevel(logging.WARNING)


async def bare_requests(
    session: aiohttp.ClientSession, url: str, token: str, agent_ids: list[str]
) -> None:
    """Make the same status requests with nothing but aiohttp: what any client pays."""
    semaphore = asyncio.Semaphore(DEFAULT_MAX_CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}

    async def get(agent_id: str) -> None:
        async with (
            semaphore,
            session.get(
                f"{url}/v1/agents/{agent_id}/sip/registration/status", headers=headers
            ) as response,
        ):
            response.raise_for_status()
            await response.read()

    await asyncio.gather(*(get(agent_id) for agent_id in agent_ids))


async def use_bare_client(
    coordinator: TelzinoCoordinator,
    session: aiohttp.ClientSession,
    url: str,
    token: str,
) -> None:
    """Have the coordinator's status requests made with bare aiohttp.

    Each agent's answer is the reading the client made of it at setup, as an
    unchanged answer would be.
    """
    readings = await coordinator.client.get_registration_statuses(
        list(coordinator.data)
    )

    async def get_registration_statuses(
        agent_ids: Iterable[str],
    ) -> dict[str, RegistrationStatus | TelzinoError]:
        ids = list(agent_ids)
        await bare_requests(session, url, token, ids)
        return {agent_id: readings[agent_id] for agent_id in ids}

    coordinator.client.get_registration_statuses = get_registration_statuses  # type: ignore[method-assign]


async def bare_cpu_time(
    session: aiohttp.ClientSession, url: str, token: str, agent_ids: list[str]
) -> float:
    """Event-loop CPU seconds of the same requests through bare aiohttp."""
    cpu_start = time.thread_time()
    await bare_requests(session, url, token, agent_ids)
    return time.thread_time() - cpu_start


async def fetch_token(session: aiohttp.ClientSession, url: str) -> str:
    """Return a token for the bare aiohttp baseline."""
    async with session.post(
        f"{url}/oauth/token",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "audience": TOKEN_AUDIENCE,
            "grant_type": "client_credentials",
        },
    ) as response:
        token: str = (await response.json())["access_token"]
        return token


async def idle_wake_cost() -> float:
    """CPU seconds this machine charges the event loop for one idle wake-up."""
    costs = []
    for _ in range(20):
        start = time.thread_time()
        await asyncio.sleep(0.01)
        costs.append(time.thread_time() - start)
    return statistics.median(costs)


class SteppedClock:
    """Home Assistant's clock, moved by hand from step to step.

    freezegun's frozen clock costs 10-20 us a read (it walks the stack), and
    would bill the harness to whoever reads the clock most; this one costs
    what a real clock read costs.
    """

    def __init__(self) -> None:
        """Start at the real time."""
        self.now = datetime.now(UTC)

    def reset(self) -> None:
        """Go back to the real time, the fake API's.

        Each row's fake computes its agents' expiries on the real clock; a
        clock an hour ahead of it would see their refreshes come due, and the
        refresh watch's looks would add steps no real minute has.
        """
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        """Return the time the bench moved to."""
        return self.now


async def test_poll_cost(hass: HomeAssistant, socket_enabled: None) -> None:
    """Wall and event-loop CPU time of a round of reads with entity state writes.

    A round is one interval of the scheduler: the steps that read every
    agent once, each run at its moment as its timer would (the clock is moved
    to each step). Next to each step, the same requests made with bare aiohttp
    through the same session: the part that no client code can save while the
    API needs one request per agent. The two are paired, round by round, so
    that both meet the same machine; each figure is the median of ROUNDS, and
    "rest" the median of each round's difference (this machine's CPU time
    varies by 10 % or more between rounds, and pairing cancels most of it).

    The uptime sensors' minute tick is not a poll's: it runs once a minute
    whatever is read, and is measured on its own.
    """
    run_as_users_do(hass)
    session = async_get_clientsession(hass)
    clock = SteppedClock()
    lines = [
        (
            f"Poll cost in Home Assistant, fake latency {LATENCY * 1000:.0f} ms, "
            f"at most {DEFAULT_MAX_CONCURRENCY} requests in flight, "
            f"median of {', '.join(f'{ROUNDS[a]} rounds at {a}' for a in AGENT_COUNTS)}"
            " agents; a round is one 60 s interval of the scheduler"
            f"{'; the client replaced by bare aiohttp' if BARE_CLIENT else ''}\n"
        ),
        (
            "| agents | setup s | steps per round | round wall s | ideal s | ratio "
            "| round CPU ms | bare aiohttp CPU ms | rest CPU ms | rest / bare "
            "| uptime tick CPU ms | requests per round |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    worst_wall = 0.0
    shares: dict[int, float] = {}
    met = True
    async with control_session() as control:
        with (
            patch.object(dt_util, "utcnow", clock),
            # Ticked by hand below, outside the rounds.
            patch.object(history, "TICK", timedelta(days=1)),
        ):
            for agents in AGENT_COUNTS:
                clock.reset()
                async with fake_api(agents, LATENCY) as url:
                    start = time.perf_counter()
                    entry = await setup_entry(
                        hass, make_entry(url, [], all_agents=True)
                    )
                    setup = time.perf_counter() - start
                    await flush_delayed_writes(hass)
                    coordinator = entry.runtime_data
                    token = await fetch_token(session, url)
                    agent_ids = list(coordinator.data)
                    if BARE_CLIENT:
                        await use_bare_client(coordinator, session, url, token)
                    walls, ideals, cpus, bare_cpus, steps, ticks = (
                        [],
                        [],
                        [],
                        [],
                        [],
                        [],
                    )
                    offset = 0
                    for _ in range(ROUNDS[agents]):
                        wall = ideal = cpu = bare = 0.0
                        batches: list[int] = []
                        used: Counter[str] = Counter()
                        read = 0
                        while read < agents:
                            # Its timer would fire at this moment; firing it by
                            # hand costs only the harness.
                            coordinator._async_unsub_refresh()
                            clock.now = coordinator._next_step
                            # Counted between steps: the control requests are not measured.
                            counted = await counters(url, control)
                            wall_start, cpu_start = (
                                time.perf_counter(),
                                time.thread_time(),
                            )
                            await coordinator._async_scheduled_step()
                            await hass.async_block_till_done()
                            wall += time.perf_counter() - wall_start
                            cpu += time.thread_time() - cpu_start
                            assert coordinator.last_update_success
                            step_used = delta(await counters(url, control), counted)
                            used.update(step_used)
                            batch = step_used.get("status", 0)
                            read += batch
                            if batch:
                                batches.append(batch)
                                ideal += (
                                    math.ceil(batch / DEFAULT_MAX_CONCURRENCY) * LATENCY
                                )
                                # The same number of requests at once, bare aiohttp,
                                # right after the step (both meet a warm loop).
                                ids = [
                                    agent_ids[(offset + n) % agents]
                                    for n in range(batch)
                                ]
                                offset += batch
                                bare += await bare_cpu_time(session, url, token, ids)
                        walls.append(wall)
                        ideals.append(ideal)
                        cpus.append(cpu)
                        bare_cpus.append(bare)
                        steps.append(len(batches))
                        cpu_start = time.thread_time()
                        coordinator.history._async_tick(clock.now)
                        await hass.async_block_till_done()
                        ticks.append(time.thread_time() - cpu_start)
                    assert len(coordinator.data) == agents
                    await hass.config_entries.async_unload(entry.entry_id)
                    await hass.config_entries.async_remove(entry.entry_id)
                wall, ideal = statistics.median(walls), statistics.median(ideals)
                cpu, bare_cpu = statistics.median(cpus), statistics.median(bare_cpus)
                worst_wall = max(worst_wall, wall / ideal)
                # Paired: each round against the bare requests of its round.
                differences = [c - b for c, b in zip(cpus, bare_cpus, strict=True)]
                rest = statistics.median(differences)
                rest_error = median_standard_error(differences)
                if (target := REST_TARGETS.get(agents)) is not None:
                    shares[agents] = rest / bare_cpu
                    met = met and rest / bare_cpu <= target
                per_round = ", ".join(
                    f"{k} {v:g}" for k, v in sorted(used.items()) if v
                )
                lines.append(
                    f"| {agents} | {setup:.2f} | {statistics.median(steps):g} "
                    f"| {wall:.3f} | {ideal:.3f} | {wall / ideal:.2f} "
                    f"| {cpu * 1000:.1f} | {bare_cpu * 1000:.1f} "
                    f"| {rest * 1000:.1f} ± {rest_error * 1000:.1f} "
                    f"| {rest / bare_cpu:.0%} ± {rest_error / bare_cpu:.0%} "
                    f"| {statistics.median(ticks) * 1000:.1f} | {per_round} |"
                )
    added = ", ".join(
        f"{shares[agents]:.1%} at {agents} agents (target <= {target:.0%})"
        for agents, target in REST_TARGETS.items()
        if agents in shares
    )
    lines.append(
        f"\nWhat the integration adds to bare aiohttp: {added}: "
        f"{'met' if met else 'NOT met'}. One idle event-loop wake-up costs "
        f"{await idle_wake_cost() * 1e6:.0f} us of CPU on this machine."
    )
    lines.append(f"\nworst ratio to ideal: {worst_wall:.2f}")
    RESULTS.append("\n".join(lines))


def median_standard_error(values: list[float]) -> float:
    """Return the standard error of the values' median.

    The spread is taken from the middle half (interquartile range / 1.349 for
    normal data), so that a round with a garbage collection does not inflate it.
    """
    first, _, third = statistics.quantiles(values, n=4)
    spread = (third - first) / 1.349
    return math.sqrt(math.pi / 2) * spread / math.sqrt(len(values))


async def flush_delayed_writes(hass: HomeAssistant) -> None:
    """Let the registries write what setup changed, before anything is measured.

    Home Assistant saves them 10 s after the last change; a save of thousands
    of entities would otherwise land in one of the measured steps, or in the
    bare requests beside it. Firing their timer early does not save them (the
    store reschedules a timer that fires before its time): shutdown's final
    write does, at once.
    """
    await hass.async_block_till_done()
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()


async def test_token_requests_per_day(
    hass: HomeAssistant, socket_enabled: None, freezer: FrozenDateTimeFactory
) -> None:
    """Token requests over two simulated days of polls with client credentials."""
    run_as_users_do(hass)
    async with fake_api(10, 0.0) as url:
        entry = await setup_entry(hass, make_entry(url, [], all_agents=True))
        coordinator = entry.runtime_data
        coordinator.update_interval = None
        before = await counters(url)
        polls = 2 * 1440
        for _ in range(polls):
            freezer.tick(timedelta(seconds=60))
            await coordinator.async_refresh()
        used = delta(await counters(url), before)
        await hass.config_entries.async_unload(entry.entry_id)
    report: dict[str, Any] = {
        "simulated days": 2,
        "polls": polls,
        "token requests per day": used.get("token", 0) / 2,
        "status requests per poll": used.get("status", 0) / polls,
        "agent list requests per day": used.get("agents", 0) / 2,
    }
    RESULTS.append(
        "Client credentials over 2 simulated days (10 agents, 60 s polls): "
        + ", ".join(f"{k}: {v}" for k, v in report.items())
    )
    assert report["token requests per day"] <= 1


def teardown_module() -> None:
    """Print the tables once both benchmarks ran."""
    print("\n\n" + "\n\n".join(RESULTS))
