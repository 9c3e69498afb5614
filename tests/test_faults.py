"""The fault matrix: a loaded entry against the fake API, one fault at a time.

For each fault: what the entities show (unavailable, never a stale
"registered"), the reauth flow or repair issue where one belongs, recovery at
the next good poll, and a quiet log: at most one warning line per outage and
one line when it is over, no traceback.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.telzino.api import client as api_client
from custom_components.telzino.const import DOMAIN
from scripts.fake_telzino import (
    CLIENT_ID,
    CLIENT_SECRET,
    FRONT_DESK,
    STATUS,
    TOKEN,
    FakeTelzino,
)
from tests.common import (
    assert_quiet_log,
    make_entry,
    poll,
    reauthenticate,
    run_for,
    setup_entry,
)
from tests.faults import FAULTS, HARMLESS, ONE_AGENT, OUTAGE, REAUTH

FRONT = "binary_sensor.front_desk_registered"
SALES = "binary_sensor.sales_line_registered"
# Every entity of Front desk that shows its status.
FRONT_ENTITIES = (
    FRONT,
    "sensor.front_desk_registration_state",
    "sensor.front_desk_registration_expires",
    "event.front_desk_registration",
)
# The stored history describes the past, which a fault does not change.
FRONT_HISTORY = ("sensor.front_desk_lost_since", "sensor.front_desk_uptime_24_h")


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
    """Entities, flows, issues and the log during one fault and after it."""
    fault = FAULTS[name]
    monkeypatch.setattr(api_client, "DEFAULT_REQUEST_TIMEOUT", 0.5)
    token = fake.add_token() if fault.token_entry else None
    entry = await setup_entry(hass, make_entry(fake_url, agents, token=token))
    caplog.set_level(logging.INFO)
    caplog.clear()

    await fault.start(fake)
    for _ in range(3):  # a lasting fault: still one warning
        await fault.poll(hass, freezer)
        front = {hass.states.get(entity_id).state for entity_id in FRONT_ENTITIES}
        sales = hass.states.get(SALES).state
        for entity_id in FRONT_HISTORY:
            assert hass.states.get(entity_id).state != STATE_UNAVAILABLE
        if fault.effect == HARMLESS:
            assert STATE_UNAVAILABLE not in front
            assert sales == STATE_ON
        elif fault.effect == ONE_AGENT:
            assert (front, sales) == ({STATE_UNAVAILABLE}, STATE_ON)
        else:
            assert (front, sales) == ({STATE_UNAVAILABLE}, STATE_UNAVAILABLE)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["context"]["entry_id"]) for f in flows] == (
        [(SOURCE_REAUTH, entry.entry_id)] if fault.effect == REAUTH else []
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
    assert hass.states.get(FRONT_ENTITIES[1]).state == "unknown"
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert hass.states.get(FRONT).state == STATE_ON
    assert_quiet_log(caplog, warnings=0, recoveries=0)


def http_date(when: datetime) -> str:
    """Format a time as an HTTP-date."""
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


@pytest.mark.parametrize(
    "retry_after",
    [
        lambda now: "120",
        lambda now: http_date(now + timedelta(seconds=120)),
    ],
    ids=["seconds", "HTTP-date"],
)
async def test_429_holds_every_request_until_retry_after(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    retry_after: Callable[[datetime], str],
) -> None:
    """Nothing is sent before Retry-After ends; the 429 alone changes nothing shown.

    These agents show no lastRegisterSent, so nothing proves their reading
    current past its interval: unavailable then, back once read again. The
    log stays quiet (a rate limit is not an error).
    """
    caplog.set_level(logging.INFO)
    caplog.clear()
    freezer.tick(timedelta(seconds=60))
    fake.inject(STATUS, status=429, retry_after=retry_after(datetime.now(UTC)))
    await poll(hass, freezer, 0)
    assert hass.states.get(FRONT).state == STATE_ON

    fake.clear_faults()
    fake.reset_stats()
    await poll(hass, freezer, 60)
    await poll(hass, freezer, 58)
    assert fake.stats.requests[STATUS] == 0  # nothing before Retry-After passed
    assert hass.states.get(FRONT).state == STATE_UNAVAILABLE
    # One request when the wait ends, the other at the pace learned.
    await poll(hass, freezer, 3)
    assert fake.stats.requests[STATUS] == 1
    await run_for(hass, freezer, 60)
    assert fake.stats.requests[STATUS] >= 2
    assert hass.states.get(FRONT).state == STATE_ON
    assert_quiet_log(caplog, warnings=2, recoveries=2)


async def test_429_without_retry_after_backs_off(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without Retry-After the wait doubles from 30 s, up to 10 minutes.

    Readings are shown while provably current, at most three intervals; then
    the agents are unavailable until read again, with one line each way.
    """
    caplog.set_level(logging.INFO)
    caplog.clear()
    fake.inject(STATUS, status=429)
    await poll(hass, freezer, 60)
    # Both agents' reads went together, before the first 429 came back.
    assert fake.stats.responses[STATUS, 429] == 2
    # (Past an hour the token's renewal succeeds, which starts the wait over.)
    for delay in (30, 60, 120, 240, 480, 600, 600):
        fake.reset_stats()
        await poll(hass, freezer, delay - 1)
        assert fake.stats.requests.total() == 0
        await poll(hass, freezer, 2)
        # One request when the wait ends.
        assert fake.stats.requests.total() == 1, delay
    assert hass.states.get(FRONT).state == STATE_UNAVAILABLE

    fake.clear_faults()
    await poll(hass, freezer, 3840)
    assert hass.states.get(FRONT).state == STATE_ON
    # Back to the normal pace, and the backoff starts over next time.
    fake.reset_stats()
    await poll(hass, freezer)
    assert fake.stats.requests[STATUS] == 2
    assert_quiet_log(caplog, warnings=2, recoveries=2)
