"""Benchmark: the cost of a poll in a running Home Assistant (run by scripts/bench).

Not part of the test suite (its name does not start with test_). The fake
Telzino API runs in its own process with 100 ms latency, so that the CPU time
measured here is Home Assistant's and the integration's alone.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
import json
import logging
import math
import statistics
import sys
import time
from typing import Any

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from custom_components.telzino.api import DEFAULT_MAX_CONCURRENCY, TOKEN_AUDIENCE
from scripts.fake_telzino import CLIENT_ID, CLIENT_SECRET
from scripts.live_ha import free_port
from tests.common import make_entry, setup_entry

LATENCY = 0.1
ROUNDS = 5
CPU_TARGET_100 = 0.020  # seconds of event-loop CPU per refresh of 100 agents
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


async def counters(url: str) -> dict[str, int]:
    """Return the fake API's request counters."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/_fake/state") as response,
    ):
        requests: dict[str, int] = (await response.json())["requests"]
        return requests


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
    for _ in range(ROUNDS * 4):
        start = time.thread_time()
        await asyncio.sleep(0.01)
        costs.append(time.thread_time() - start)
    return statistics.median(costs)


async def test_poll_cost(hass: HomeAssistant, socket_enabled: None) -> None:
    """Wall and event-loop CPU time of a refresh with entity state writes.

    Each figure is the median of ROUNDS refreshes. Next to it, the CPU time of
    the same requests made with bare aiohttp through the same session: the part
    of a refresh that no client code can save while the API needs one request
    per agent.
    """
    run_as_users_do(hass)
    session = async_get_clientsession(hass)
    lines = [
        (
            f"Poll cost in Home Assistant, fake latency {LATENCY * 1000:.0f} ms, "
            f"at most {DEFAULT_MAX_CONCURRENCY} requests in flight, "
            f"median of {ROUNDS} refreshes\n"
        ),
        (
            "| agents | setup s | refresh wall s | ideal s | ratio "
            "| refresh CPU ms | bare aiohttp CPU ms | rest CPU ms | requests per poll |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    cpu_of: dict[int, tuple[float, float]] = {}
    for agents in (10, 100, 500):
        async with fake_api(agents, LATENCY) as url:
            start = time.perf_counter()
            entry = await setup_entry(hass, make_entry(url, [], all_agents=True))
            setup = time.perf_counter() - start
            coordinator = entry.runtime_data
            walls, cpus, bare_cpus = [], [], []
            before = await counters(url)
            for _ in range(ROUNDS):
                wall_start, cpu_start = time.perf_counter(), time.thread_time()
                await coordinator.async_refresh()
                await hass.async_block_till_done()
                walls.append(time.perf_counter() - wall_start)
                cpus.append(time.thread_time() - cpu_start)
                assert coordinator.last_update_success
            used = delta(await counters(url), before)
            assert len(coordinator.data) == agents
            token = await fetch_token(session, url)
            for _ in range(ROUNDS):
                cpu_start = time.thread_time()
                await bare_requests(session, url, token, list(coordinator.data))
                bare_cpus.append(time.thread_time() - cpu_start)
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.config_entries.async_remove(entry.entry_id)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        bare_cpu = statistics.median(bare_cpus)
        cpu_of[agents] = (cpu, bare_cpu)
        ideal = math.ceil(agents / DEFAULT_MAX_CONCURRENCY) * LATENCY
        worst = max(worst, wall / ideal)
        per_poll = ", ".join(
            f"{k} {v / ROUNDS:g}" for k, v in sorted(used.items()) if v
        )
        lines.append(
            f"| {agents} | {setup:.2f} | {wall:.3f} | {ideal:.3f} | {wall / ideal:.2f} "
            f"| {cpu * 1000:.1f} | {bare_cpu * 1000:.1f} "
            f"| {(cpu - bare_cpu) * 1000:.1f} | {per_poll} |"
        )
    cpu, bare_cpu = cpu_of[100]
    lines.append(
        f"\nCPU per refresh of 100 agents: {cpu * 1000:.1f} ms "
        f"(target < {CPU_TARGET_100 * 1000:.0f} ms: "
        f"{'met' if cpu < CPU_TARGET_100 else 'NOT met'}); the same requests with "
        f"bare aiohttp: {bare_cpu * 1000:.1f} ms. One idle event-loop wake-up costs "
        f"{await idle_wake_cost() * 1e6:.0f} us of CPU on this machine."
    )
    lines.append(f"\nworst ratio to ideal: {worst:.2f}")
    RESULTS.append("\n".join(lines))


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
