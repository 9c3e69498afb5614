"""Benchmark: the cost of a poll in a running Home Assistant (run by scripts/bench).

Not part of the test suite (its name does not start with test_). The fake
Telzino API runs in its own process with 100 ms latency, so that the CPU time
measured here is Home Assistant's and the integration's alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
import json
import math
import sys
import time
from typing import Any

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant

from custom_components.telzino.api import DEFAULT_MAX_CONCURRENCY
from tests.conftest import make_entry, setup_entry
from tests.live_ha import free_port

LATENCY = 0.1
RESULTS: list[str] = []


@asynccontextmanager
async def fake_api(agents: int, latency: float) -> AsyncIterator[str]:
    """The fake API in a subprocess; yields its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_telzino",
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
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/_fake/state") as response,
    ):
        requests: dict[str, int] = (await response.json())["requests"]
        return requests


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after.get(key, 0) - before.get(key, 0) for key in after}


async def test_poll_cost(hass: HomeAssistant, socket_enabled: None) -> None:
    """Wall and CPU time of one refresh, with entity state writes, per agent count."""
    hass.loop.set_debug(False)  # the harness's debug mode is not what users run
    lines = [
        (
            f"Poll cost in Home Assistant, fake latency {LATENCY * 1000:.0f} ms, "
            f"at most {DEFAULT_MAX_CONCURRENCY} requests in flight\n"
        ),
        (
            "| agents | setup s | refresh wall s | ideal s | ratio "
            "| refresh CPU ms | requests per poll |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for agents in (10, 100, 500):
        async with fake_api(agents, LATENCY) as url:
            start = time.perf_counter()
            entry = await setup_entry(hass, make_entry(url, [], all_agents=True))
            setup = time.perf_counter() - start
            coordinator = entry.runtime_data
            before = await counters(url)
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            await coordinator.async_refresh()
            await hass.async_block_till_done()
            wall = time.perf_counter() - wall_start
            cpu = time.process_time() - cpu_start
            used = delta(await counters(url), before)
            assert coordinator.last_update_success
            assert len(coordinator.data) == agents
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.config_entries.async_remove(entry.entry_id)
        ideal = math.ceil(agents / DEFAULT_MAX_CONCURRENCY) * LATENCY
        worst = max(worst, wall / ideal)
        per_poll = ", ".join(f"{k} {v}" for k, v in sorted(used.items()) if v)
        lines.append(
            f"| {agents} | {setup:.2f} | {wall:.3f} | {ideal:.3f} | {wall / ideal:.2f} "
            f"| {cpu * 1000:.1f} | {per_poll} |"
        )
    lines.append(f"\nworst ratio to ideal: {worst:.2f}")
    RESULTS.append("\n".join(lines))


async def test_token_requests_per_day(
    hass: HomeAssistant, socket_enabled: None, freezer: FrozenDateTimeFactory
) -> None:
    """Token requests over two simulated days of polls with client credentials."""
    hass.loop.set_debug(False)
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
    print("\n\n" + "\n\n".join(RESULTS))  # noqa: T201
