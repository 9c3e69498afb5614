"""Fixtures shared by the test suite."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from unittest.mock import PropertyMock, patch

import aiohttp
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

# Import the integration before Home Assistant's loader looks for it: otherwise
# PHCC's own testing_config/custom_components package shadows it.
import custom_components.telzino  # noqa: F401
from scripts.fake_telzino import FRONT_DESK, SALES_LINE, FakeTelzino, serve
from tests.common import FakeClock, make_entry, setup_entry


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Return snapshots that understand Home Assistant's entries and states.

    Core's conftest defines the same fixture: syrupy's own `snapshot` fixture
    shadows the one of the test plugin.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration in every test."""


@pytest.fixture(autouse=True)
async def simulations_without_loop_debug(
    request: pytest.FixtureRequest, enable_event_loop_debug: None
) -> None:
    """Run the long simulations (marked `simulation`) without asyncio's debug mode.

    The test plugin turns it on for every test; it records a stack at every
    callback, which more than doubles what a simulation of thousands of
    steps costs. The other tests keep it.
    """
    if request.node.get_closest_marker("simulation") is not None:
        asyncio.get_running_loop().set_debug(False)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Enable the entities that are disabled by default (as core's fixture does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def clock() -> FakeClock:
    """Return a clock shared by the fake API and the client under test."""
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeTelzino:
    """Return the fake Telzino API's state; tests set agents and faults on it.

    Its times follow the test clock, which Home Assistant's does not: its
    answers' `Date` stays the host's, so that the integration sees no clock
    offset (tests of one set a wall clock of their own).
    """
    return FakeTelzino(clock=clock, date_from_clock=False)


@pytest.fixture
async def fake_url(fake: FakeTelzino, socket_enabled: None) -> AsyncIterator[str]:
    """Serve the fake API on loopback and return its base URL."""
    async with serve(fake) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Yield a plain aiohttp session for client tests outside Home Assistant."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def agents(fake: FakeTelzino) -> list[str]:
    """Two registered agents in the fake account."""
    fake.add_agent("Front desk", FRONT_DESK)
    fake.add_agent("Sales line", SALES_LINE)
    return [FRONT_DESK, SALES_LINE]


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, fake_url: str, agents: list[str]
) -> MockConfigEntry:
    """Set up the integration with client credentials, watching both agents."""
    return await setup_entry(hass, make_entry(fake_url, agents))
