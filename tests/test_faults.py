"""The fault matrix: a loaded entry against the fake API, one fault at a time.

For each fault: what the entities show (unavailable, never a stale
"registered"), the reauth flow or repair issue where one belongs, recovery at
the next good poll, and a quiet log: at most one warning line per outage and
one line when it is over, no traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import logging
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.telzino import api
from custom_components.telzino.const import DOMAIN
from tests.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    FRONT_DESK,
    make_entry,
    poll,
    setup_entry,
)
from tests.fake_telzino import STATUS, TOKEN, FakeTelzino

FRONT = "binary_sensor.front_desk_registered"
FRONT_STATE = "sensor.front_desk_registration_state"
SALES = "binary_sensor.sales_line_registered"
FIVE_MB = "x" * (5 * 1024 * 1024)

# What a fault does to the entities.
OUTAGE = "outage"  # every agent unavailable
ONE_AGENT = "one agent"  # Front desk unavailable, Sales line still updated
REAUTH = "reauth"  # unavailable, and a reauth flow asks for credentials
HARMLESS = "harmless"  # nothing the user sees changes

type Action = Callable[[FakeTelzino], Awaitable[None] | None]


@dataclass(frozen=True)
class Fault:
    """One row of the matrix."""

    inject: Action
    effect: str
    clear: Action = FakeTelzino.clear_faults
    token_entry: bool = False
    # Answers that take time: let frozen time pass in steps during the poll.
    slow: bool = False

    async def start(self, fake: FakeTelzino) -> None:
        if (pending := self.inject(fake)) is not None:
            await pending

    async def end(self, fake: FakeTelzino) -> None:
        if (pending := self.clear(fake)) is not None:
            await pending

    async def poll(self, hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
        """One poll while the fault is on."""
        await (slow_poll(hass, freezer) if self.slow else poll(hass, freezer))


def on_status(**fault: Any) -> Action:
    return lambda fake: fake.inject(STATUS, **fault) and None


def reject_credentials(fake: FakeTelzino) -> None:
    fake.expire_tokens()
    fake.clients = {}


async def refuse(fake: FakeTelzino) -> None:
    await fake.stop_listening()


async def listen(fake: FakeTelzino) -> None:
    await fake.start_listening()


FAULTS = {
    "401 with a pasted token": Fault(
        FakeTelzino.expire_tokens, REAUTH, token_entry=True
    ),
    "401 with client credentials": Fault(FakeTelzino.expire_tokens, HARMLESS),
    "client credentials rejected": Fault(reject_credentials, REAUTH),
    "403": Fault(on_status(status=403), OUTAGE),
    "404 for one agent": Fault(
        lambda fake: fake.inject(STATUS, FRONT_DESK, status=404) and None, ONE_AGENT
    ),
    "500": Fault(on_status(status=500), OUTAGE),
    "502 with an HTML body": Fault(
        on_status(
            status=502, body="<html>Bad gateway</html>", content_type="text/html"
        ),
        OUTAGE,
    ),
    "503": Fault(on_status(status=503), OUTAGE),
    "request timeout": Fault(on_status(latency=1.0), OUTAGE, slow=True),
    "connection refused": Fault(refuse, OUTAGE, clear=listen),
    "connection reset mid-body": Fault(
        on_status(drop="mid_body", body='{"success": true, "data": {}}'), OUTAGE
    ),
    "invalid JSON": Fault(on_status(status=200, body="{not json"), OUTAGE),
    "JSON without data": Fault(on_status(status=200, body='{"success": true}'), OUTAGE),
    "wrong field types": Fault(
        on_status(
            status=200,
            body='{"data": {"state": "REGISTERED_STATE", "isRegistered": "true"}}',
        ),
        OUTAGE,
    ),
    "empty body": Fault(on_status(status=200, body=""), OUTAGE),
    "5 MB body": Fault(on_status(status=200, body=FIVE_MB), OUTAGE),
}


def our_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name.startswith("custom_components.telzino")
    ]


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


@pytest.mark.parametrize("name", FAULTS)
async def test_fault(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    issue_registry: ir.IssueRegistry,
    name: str,
) -> None:
    fault = FAULTS[name]
    monkeypatch.setattr(api, "DEFAULT_REQUEST_TIMEOUT", 0.5)
    token = fake.add_token() if fault.token_entry else None
    await setup_entry(hass, make_entry(fake_url, agents, token=token))
    caplog.set_level(logging.INFO)
    caplog.clear()

    await fault.start(fake)
    for _ in range(3):  # a lasting fault: still one warning
        await fault.poll(hass, freezer)
        front, sales = hass.states.get(FRONT).state, hass.states.get(SALES).state
        if fault.effect == HARMLESS:
            assert (front, sales) == (STATE_ON, STATE_ON)
        elif fault.effect == ONE_AGENT:
            assert (front, sales) == (STATE_UNAVAILABLE, STATE_ON)
        else:
            assert (front, sales) == (STATE_UNAVAILABLE, STATE_UNAVAILABLE)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == (
        [SOURCE_REAUTH] if fault.effect == REAUTH else []
    )
    issue = issue_registry.async_get_issue(DOMAIN, f"agent_not_found_{FRONT_DESK}")
    assert (issue is not None) is (fault.effect == ONE_AGENT)

    await fault.end(fake)
    if fault.effect == REAUTH:
        fake.clients = {CLIENT_ID: CLIENT_SECRET}
        await reauthenticate(
            hass, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        )
    else:
        await poll(hass, freezer)
    assert hass.states.get(FRONT).state == STATE_ON
    assert hass.states.get(SALES).state == STATE_ON
    assert (
        issue_registry.async_get_issue(DOMAIN, f"agent_not_found_{FRONT_DESK}") is None
    )
    if fault.effect == HARMLESS:
        assert fake.stats.requests[TOKEN] == 2  # renewed once, silently
    # A reauth is the user's prompt; the log says it once, and the reload that
    # follows it needs no recovery line.
    assert_quiet_log(
        caplog,
        warnings=0 if fault.effect == HARMLESS else 1,
        recoveries=1 if fault.effect in (OUTAGE, ONE_AGENT) else 0,
    )


async def test_unknown_state_with_code_9(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not a fault to the user: the state is unknown and not registered."""
    caplog.set_level(logging.INFO)
    fake.set_state(FRONT_DESK, "SOME_NEW_STATE", state_code=9)
    await poll(hass, freezer)
    assert hass.states.get(FRONT).state == STATE_OFF
    assert hass.states.get(FRONT_STATE).state == "unknown"
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert hass.states.get(FRONT).state == STATE_ON
    assert_quiet_log(caplog, warnings=0, recoveries=0)


def http_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


@pytest.mark.parametrize(
    "retry_after",
    [
        lambda now: "120",
        lambda now: http_date(now + timedelta(seconds=120)),
    ],
    ids=["seconds", "HTTP-date"],
)
async def test_429_waits_for_retry_after(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    retry_after: Callable[[datetime], str],
) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    freezer.tick(timedelta(seconds=60))
    fake.inject(STATUS, status=429, retry_after=retry_after(datetime.now(UTC)))
    await poll(hass, freezer, 0)
    assert hass.states.get(FRONT).state == STATE_UNAVAILABLE

    fake.clear_faults()
    fake.reset_stats()
    await poll(hass, freezer, 60)
    await poll(hass, freezer, 57)
    assert fake.stats.requests[STATUS] == 0  # nothing before Retry-After passed
    await poll(hass, freezer, 4)
    assert fake.stats.requests[STATUS] == 2
    assert hass.states.get(FRONT).state == STATE_ON
    assert_quiet_log(caplog, warnings=1, recoveries=1)


async def test_429_without_retry_after_backs_off(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The wait grows from the poll interval (60, 120, 240 s ...), capped at 1 h."""
    caplog.set_level(logging.INFO)
    caplog.clear()
    fake.inject(STATUS, status=429)
    await poll(hass, freezer)
    for delay in (60, 120, 240):
        fake.reset_stats()
        await poll(hass, freezer, delay - 2)
        assert fake.stats.requests[STATUS] == 0
        await poll(hass, freezer, 3)
        assert fake.stats.requests[STATUS] > 0
    fake.clear_faults()
    await poll(hass, freezer, 480)
    assert hass.states.get(FRONT).state == STATE_ON
    assert_quiet_log(caplog, warnings=1, recoveries=1)
