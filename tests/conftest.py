"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

# Import the integration before Home Assistant's loader looks for it: otherwise
# PHCC's own testing_config/custom_components package shadows it.
import custom_components.telzino  # noqa: F401
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
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
)
from tests.fake_telzino import FakeTelzino, serve


class FakeClock:
    """A monotonic clock the tests move by hand."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots that understand Home Assistant's registry entries and states."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration in every test."""


@pytest.fixture
def clock() -> FakeClock:
    """A clock shared by the fake API and the client under test."""
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeTelzino:
    """The fake Telzino API's state; tests set agents and faults on it."""
    return FakeTelzino(clock=clock)


@pytest.fixture
async def fake_url(fake: FakeTelzino, socket_enabled: None) -> AsyncIterator[str]:
    """Serve the fake API on loopback and return its base URL."""
    async with serve(fake) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session for client tests outside Home Assistant."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


ORGANIZATION_ID = "00000000-0000-4000-8000-000000000001"
FRONT_DESK = "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e01"
SALES_LINE = "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e02"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"


@pytest.fixture
def agents(fake: FakeTelzino) -> list[str]:
    """Two registered agents in the fake account."""
    fake.add_agent("Front desk", FRONT_DESK)
    fake.add_agent("Sales line", SALES_LINE)
    return [FRONT_DESK, SALES_LINE]


def make_entry(
    url: str,
    agent_ids: list[str],
    *,
    all_agents: bool = False,
    token: str | None = None,
    scan_interval: int = DEFAULT_SCAN_INTERVAL,
) -> MockConfigEntry:
    """A config entry as the config flow creates it."""
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
        title="Telzino",
        unique_id=ORGANIZATION_ID,
        data={**auth, CONF_API_URL: url},
        options={
            CONF_AGENTS: [] if all_agents else agent_ids,
            CONF_ALL_AGENTS: all_agents,
            CONF_SCAN_INTERVAL: scan_interval,
        },
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add the entry to Home Assistant and set it up."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, fake_url: str, agents: list[str]
) -> MockConfigEntry:
    """The integration set up with client credentials, watching both agents."""
    return await setup_entry(hass, make_entry(fake_url, agents))


async def poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float = 60
) -> None:
    """Let time pass until the next poll has run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    # Scheduled coordinator refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)
