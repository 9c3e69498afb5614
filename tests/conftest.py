"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

# Import the integration before Home Assistant's loader looks for it: otherwise
# PHCC's own testing_config/custom_components package shadows it.
import custom_components.telzino  # noqa: F401
from tests.fake_telzino import FakeTelzino, serve


class FakeClock:
    """A monotonic clock the tests move by hand."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
