"""Helpers the tests share: entries as the config flow makes them, polling, logs."""

from collections.abc import Iterable
from datetime import timedelta
import logging
import time
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.telzino.const import (
    AUTH_CREDENTIALS,
    AUTH_TOKEN,
    CONF_ACCESS_TOKEN,
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_API_URL,
    CONF_AUTH_TYPE,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_SCAN_INTERVAL,
    CONF_WATCH_REFRESH,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
)
from scripts.fake_telzino import CLIENT_ID, CLIENT_SECRET, ORGANIZATION_ID, FakeAgent


class FakeClock:
    """A monotonic clock the tests move by hand."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        """Start at a fixed time."""
        self.now = now

    def __call__(self) -> float:
        """Return the current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def make_entry(
    url: str,
    agent_ids: list[str],
    *,
    all_agents: bool = False,
    token: str | None = None,
    scan_interval: int = DEFAULT_SCAN_INTERVAL,
    watch_refresh: bool = True,
    entry_id: str = "01JTELZINOTESTENTRY000000A",
) -> MockConfigEntry:
    """Return a config entry as the config flow creates it."""
    auth: dict[str, str] = (
        {CONF_AUTH_TYPE: AUTH_TOKEN, CONF_ACCESS_TOKEN: token}
        if token
        else {
            CONF_AUTH_TYPE: AUTH_CREDENTIALS,
            CONF_CLIENT_ID: CLIENT_ID,
            CONF_CLIENT_SECRET: CLIENT_SECRET,
        }
    )
    return MockConfigEntry(
        domain=DOMAIN,
        # Fixed, as core's tests do: the account's entities are named by it.
        entry_id=entry_id,
        title="Telzino",
        unique_id=ORGANIZATION_ID,
        data={**auth, CONF_API_URL: url},
        options={
            CONF_AGENTS: [] if all_agents else agent_ids,
            CONF_ALL_AGENTS: all_agents,
            CONF_SCAN_INTERVAL: scan_interval,
            CONF_WATCH_REFRESH: watch_refresh,
        },
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add the entry to Home Assistant and set it up."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def setup_platform(
    hass: HomeAssistant, entry: MockConfigEntry, platform: Platform
) -> MockConfigEntry:
    """Set up the entry with only one platform loaded (for its snapshot)."""
    with patch("custom_components.telzino.PLATFORMS", [platform]):
        return await setup_entry(hass, entry)


async def poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float = 60
) -> None:
    """Let time pass until the next poll has run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    # Scheduled coordinator refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)


async def run_for(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: int
) -> None:
    """Let `seconds` of frozen time pass, one second at a time.

    So that every planned step of the schedule runs when it is due.
    """
    for _ in range(seconds):
        freezer.tick(timedelta(seconds=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


async def slow_poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Poll while frozen time advances in small steps, so that timeouts fire."""
    freezer.tick(timedelta(seconds=60))
    async_fire_time_changed(hass)
    for _ in range(20):
        # Real time for the loopback I/O, then 0.1 s of the loop's frozen time.
        await hass.async_add_executor_job(time.sleep, 0.02)
        freezer.tick(timedelta(seconds=0.1))
        async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def our_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Return the log records of the integration."""
    return [
        record
        for record in caplog.records
        if record.name.startswith("custom_components.telzino")
    ]


def assert_quiet_log(
    caplog: pytest.LogCaptureFixture, *, warnings: int, recoveries: int
) -> None:
    """One warning for an outage and one line for its end; no traceback, anywhere."""
    records = our_records(caplog)
    logged = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    recovered = [
        r
        for r in records
        if "recovered" in r.getMessage() or "is back" in r.getMessage()
    ]
    assert len(logged) == warnings, logged
    assert len(recovered) == recoveries
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and not r.name.startswith("custom_components")
    ]


async def reauthenticate(hass: HomeAssistant, answer: dict[str, str]) -> None:
    """Answer the open reauth flow the way a user would."""
    flow = hass.config_entries.flow.async_progress_by_handler(DOMAIN)[0]
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], answer)
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()


def registered_entity_ids(agents: Iterable[FakeAgent]) -> dict[str, str]:
    """Return each agent's Registered sensor entity ID, mapped to its agent ID."""
    return {
        f"binary_sensor.{a.name.lower().replace(' ', '_')}_registered": a.id
        for a in agents
    }
