"""End to end: issue 19's three rate-limited accounts in one real `hass` process.

Real time, a real Home Assistant, three fake Telzino APIs (one account each)
behind the rate limits the issue measured: every entry loads, no agent goes
unavailable, and a lost registration shows within 2.5 x the account's
effective polling interval, which its Polling interval sensor shows.
"""

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
import time
from typing import Any

import pytest

from scripts.fake_telzino import CLIENT_ID, CLIENT_SECRET, FakeTelzino, RateLimit, serve
from scripts.live_ha import free_port, run_home_assistant
from tests.live.logs import integration_errors

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.xdist_group("live"),
    pytest.mark.timeout(600),
]


@dataclass(frozen=True)
class Account:
    """One account: its agents, interval and the API's limit."""

    prefix: str
    agents: int
    interval: int
    limit: RateLimit


ACCOUNTS = (
    Account("Big", 150, 60, RateLimit("sliding_window", 100, 60)),
    Account("Hourly", 20, 60, RateLimit("fixed_window", 1000, 3600)),
    Account("Bursty", 60, 30, RateLimit("token_bucket", 25, 10, headers="ietf")),
)
# Long enough for every account to settle into its budget.
OBSERVE = 150


def entity(name: str, kind: str = "registered") -> str:
    """Return the Registered entity ID of an agent name."""
    return f"binary_sensor.{name.lower().replace(' ', '_')}_{kind}"


def shows_intervals(
    states: dict[str, dict[str, Any]], intervals: dict[str, int]
) -> bool:
    """Tell whether each Polling interval sensor shows its interval (in seconds)."""
    return all(
        states.get(entity_id, {}).get("state") in (str(seconds), f"{seconds:.1f}")
        for entity_id, seconds in intervals.items()
    )


async def test_three_rate_limited_accounts(
    socket_enabled: None, tmp_path: Path
) -> None:
    """Every entry loads and stays available; a loss shows within 2.5 x its interval."""
    fakes = []
    for number, account in enumerate(ACCOUNTS):
        fake = FakeTelzino(clock=time.time)
        for agent in fake.add_agents(account.agents, prefix=account.prefix):
            # One organization per account, as Telzino has it.
            agent.organization_id = f"live-organization-{number}"
        fakes.append(fake)
    async with AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serve(fake)) for fake in fakes]
        hass = await stack.enter_async_context(
            run_home_assistant(tmp_path / "config", free_port())
        )
        await hass.onboard()
        entries = []
        for account, fake, url in zip(ACCOUNTS, fakes, urls, strict=True):
            # Limited from the first request, the config flow's included.
            fake.rate_limit = account.limit
            entry_id = await hass.add_telzino(url, CLIENT_ID, CLIENT_SECRET)
            if account.interval != 60:
                await hass.set_scan_interval(entry_id, account.interval)
            entries.append(entry_id)
        registry = await hass.websocket_command({"type": "config/entity_registry/list"})
        polling_interval = {
            account.prefix: next(
                item["entity_id"]
                for item in registry
                if item["unique_id"] == f"{entry_id}_polling_interval"
            )
            for account, entry_id in zip(ACCOUNTS, entries, strict=True)
        }
        # A changed interval reloads the entry, its entities unavailable for a
        # moment: watch from when its Polling interval sensor shows the change.
        changed = {
            polling_interval[account.prefix]: account.interval
            for account in ACCOUNTS
            if account.interval != 60
        }
        async with asyncio.timeout(60):
            while not shows_intervals(await hass.states(), changed):  # noqa: ASYNC110  # another process
                await asyncio.sleep(1)
        started = time.monotonic()
        while time.monotonic() - started < OBSERVE:
            states = await hass.states()
            for account in ACCOUNTS:
                shown = [
                    states.get(entity(f"{account.prefix} {n:03d}"), {}).get("state")
                    for n in range(account.agents)
                ]
                assert "unavailable" not in shown, account.prefix
            await asyncio.sleep(5)
        states = await hass.states()
        for account in ACCOUNTS:
            # By now every agent was read, and is registered.
            assert all(
                states[entity(f"{account.prefix} {n:03d}")]["state"] == "on"
                for n in range(account.agents)
            ), account.prefix
        deadline = {
            account.prefix: 2.5
            * float(states[polling_interval[account.prefix]]["state"])
            for account in ACCOUNTS
        }
        lost_at = time.monotonic()
        for fake in fakes:
            first = next(iter(fake.agents.values()))
            fake.set_state(first.id, "REGISTER_TIMEOUT_STATE")
        shown_at: dict[str, float] = {}
        async with asyncio.timeout(max(deadline.values()) + 10):
            while len(shown_at) < len(ACCOUNTS):
                states = await hass.states()
                for account in ACCOUNTS:
                    if states[entity(f"{account.prefix} 000")]["state"] == "off":
                        shown_at.setdefault(account.prefix, time.monotonic() - lost_at)
                await asyncio.sleep(1)
        for prefix, seconds in shown_at.items():
            assert seconds <= deadline[prefix] + 2, (prefix, seconds, deadline)
        exit_code = await hass.stop()
    assert exit_code == 0
    assert integration_errors(tmp_path / "config") == []
    for fake in fakes:
        assert fake.stats.rate_limited <= 0.02 * sum(fake.stats.requests.values()) + 12
