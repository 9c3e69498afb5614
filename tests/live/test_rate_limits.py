"""End to end: five rate-limited accounts in one real `hass` process.

Real time, a real Home Assistant, five fake Telzino APIs (one account each),
each behind a limit of another shape that its agents fill or overfill at
their interval. After the options are saved (a reload whose first requests
meet a window the first run spent): every entry is back, no agent goes
unavailable, the reads reach 90 % of what the account needs or the limit
allows (whichever is less), few requests are refused, and a lost
registration shows within 2.5 x the account's effective polling interval,
which its Polling interval sensor shows. The accounts are as small as shows
that. `tests/test_ratelimit.py` plays larger ones in simulated time, and
limits announced in no way: a bare 429 is learned over minutes (after a
reload, its agents may wait minutes for their first read).
`scripts/bench --rate-limit` plays up to 1,000 agents.
"""

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
import time
from typing import Any

import pytest

from custom_components.telzino.api import DEFAULT_MAX_CONCURRENCY
from scripts.fake_telzino import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeTelzino,
    RateLimit,
    Tiers,
    serve,
)
from scripts.live_ha import free_port, run_home_assistant
from tests.live.logs import integration_errors

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    # A live worker of its own: it waits on real time longest.
    pytest.mark.xdist_group("live-rate-limits"),
    pytest.mark.timeout(600),
]


@dataclass(frozen=True)
class Account:
    """One account: its agents, interval and the API's limit."""

    prefix: str
    agents: int
    interval: int
    limit: RateLimit | Tiers


ACCOUNTS = (
    # 40 agents at 30 s need 80 requests a minute: 60 are allowed, and only
    # 429s (with Retry-After) say so.
    Account("Big", 40, 30, RateLimit("sliding_window", 60, 60)),
    # 20 agents at 30 s need 40 a minute: 30 a minute, announced in X-RateLimit-*.
    Account(
        "Windowed", 20, 30, RateLimit("fixed_window", 30, 60, headers="x-ratelimit")
    ),
    # 60 agents at 30 s need 2 a second: 2.5 are allowed, in bursts of 25.
    Account("Bursty", 60, 30, RateLimit("token_bucket", 25, 10, headers="ietf")),
    # The same need against 25 per 10 s in fixed windows, told by Retry-After
    # alone (issue 34's first case).
    Account("Fixed", 60, 30, RateLimit("fixed_window", 25, 10)),
    # 40 agents at 30 s need 80 a minute: 2 a second and 60 a minute at once,
    # each told by Retry-After alone.
    Account(
        "Tiered",
        40,
        30,
        Tiers((RateLimit("fixed_window", 2, 1), RateLimit("sliding_window", 60, 60))),
    ),
)
STATUS_PATH = "/sip/registration/status"
# What the reads reach, at least, of what the account needs or the limit
# allows (whichever is less).
READS = 0.9
# Longer than a reading is shown without a new read (an effective interval of
# about 40 s, a read's lag and 5 s): an agent the reads left behind would show.
# And long enough that each account's reads are counted over a whole window of
# its limit, after what the first run sent has left it: a wait for the API
# falls within a shorter span or not, by chance.
OBSERVE = max(75, 2 * max(account.limit.window for account in ACCOUNTS))


def entity(name: str, kind: str = "registered") -> str:
    """Return the Registered entity ID of an agent name."""
    return f"binary_sensor.{name.lower().replace(' ', '_')}_{kind}"


async def test_rate_limited_accounts_after_the_options_are_saved(
    socket_enabled: None, tmp_path: Path
) -> None:
    """Every entry is back and stays available, reads keep up; a loss shows in time."""
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
        saved_at = {}
        for account, fake, url in zip(ACCOUNTS, fakes, urls, strict=True):
            # Limited from the first request, the config flow's included.
            fake.rate_limit = account.limit
            entry_id = await hass.add_telzino(url, CLIENT_ID, CLIENT_SECRET)
            saved_at[account.prefix] = datetime.now(UTC)
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

        def reloaded(states: dict[str, dict[str, Any]]) -> bool:
            """Tell whether every entry is back from the reload the options made.

            Its Polling interval sensor then shows a value set after they were
            saved (the reload made it unavailable for a moment).
            """
            return all(
                (shown := states.get(polling_interval[account.prefix]))
                and shown["state"] not in ("unavailable", "unknown")
                and datetime.fromisoformat(shown["last_changed"])
                >= saved_at[account.prefix]
                for account in ACCOUNTS
            )

        async with asyncio.timeout(60):
            while not reloaded(await hass.states()):  # noqa: ASYNC110  # another process
                await asyncio.sleep(1)
        reads_from = time.time()
        # One agent per account is lost as the watch begins: the rest must stay
        # available meanwhile, and the loss must show in time.
        lost_at = started = time.monotonic()
        for fake in fakes:
            first = next(iter(fake.agents.values()))
            fake.set_state(first.id, "REGISTER_TIMEOUT_STATE")
        shown_at: dict[str, float] = {}
        while time.monotonic() - started < OBSERVE or len(shown_at) < len(ACCOUNTS):
            assert time.monotonic() - started < 4 * OBSERVE, shown_at
            states = await hass.states()
            for account in ACCOUNTS:
                shown = [
                    states.get(entity(f"{account.prefix} {n:03d}"), {}).get("state")
                    for n in range(account.agents)
                ]
                assert "unavailable" not in shown, account.prefix
                if shown[0] == "off":
                    shown_at.setdefault(account.prefix, time.monotonic() - lost_at)
            await asyncio.sleep(1)
        reads_until = time.time()
        states = await hass.states()
        for account, fake in zip(ACCOUNTS, fakes, strict=True):
            # Once what the first run sent has left the limit's window.
            start = reads_from + account.limit.window
            during = [
                path.endswith(STATUS_PATH)
                for at, path, admitted in fake.stats.request_times
                if admitted and start <= at < reads_until
            ]
            rate = min(account.agents / account.interval, account.limit.rate)
            # The token and the agent list's pages come out of the same budget.
            wanted = rate * (reads_until - start) - during.count(False)
            # Give or take two reads: the span's ends cut rounds.
            assert during.count(True) >= READS * wanted - 2, (
                account.prefix,
                during.count(True),
                wanted,
            )
            # By now every agent was read, and the others are registered.
            assert all(
                states[entity(f"{account.prefix} {n:03d}")]["state"] == "on"
                for n in range(1, account.agents)
            ), account.prefix
            effective = float(states[polling_interval[account.prefix]]["state"])
            if account.agents / account.interval > account.limit.rate:
                # The limit binds: the account is read less often than configured.
                assert effective > account.interval, account.prefix
            assert shown_at[account.prefix] <= 2.5 * effective + 2, (
                account.prefix,
                shown_at,
                effective,
            )
        exit_code = await hass.stop()
    assert exit_code == 0
    assert integration_errors(tmp_path / "config") == []
    for fake in fakes:
        # Each time the pace is found too high (the first run's burst, and
        # the reload's first requests when that burst taught too much), the
        # requests already in flight are refused: the client's concurrency.
        lessons = 2 * DEFAULT_MAX_CONCURRENCY
        requests = sum(fake.stats.requests.values())
        assert fake.stats.rate_limited <= 0.02 * requests + lessons
