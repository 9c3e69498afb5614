"""What "Registered" means: the agent can receive calls now.

A refresh in progress is not a loss, a registration the user disabled is not a
loss, and a loss that began while Home Assistant was stopped is reported once.
"""

from datetime import timedelta
import time

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)

from custom_components.telzino.const import DOMAIN
from scripts.fake_telzino import FRONT_DESK, FakeTelzino
from tests.common import make_entry, poll, setup_entry

REGISTERED = "binary_sensor.front_desk_registered"
STATE = "sensor.front_desk_registration_state"
EVENT = "event.front_desk_registration"


def events(hass: HomeAssistant, seen: list[str]) -> list[str]:
    """Return the event types fired since the last call (the entity's state is its time)."""
    state = hass.states.get(EVENT)
    if state.state not in (STATE_UNKNOWN, *seen[-1:]):
        seen.append(state.state)
        return [state.attributes["event_type"]]
    return []


async def registered_for_an_hour(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str
) -> None:
    """Set up Front desk registered, on Home Assistant's (frozen) clock."""
    fake.clock = time.time
    fake.add_agent("Front desk", FRONT_DESK)
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))


def refresh_sent(fake: FakeTelzino, state: str, seconds_before_poll: float) -> None:
    """Put Front desk in `state`, its REGISTER sent that long before the next poll.

    On the API's clock, as it stamps lastRegisterSent.
    """
    fake.set_state(
        FRONT_DESK, state, last_register_sent=fake.clock() + 60 - seconds_before_poll
    )


async def test_a_refresh_in_progress_is_not_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A refresh not yet answered keeps Registered on, with no event.

    The state sensor still shows what the API says.
    """
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    refresh_sent(fake, "REGISTERING_STATE", 20)
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(STATE).state == "registering"
    refresh_sent(fake, "AUTHENTICATING_STATE", 30)
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert events(hass, seen) == []


async def test_a_refresh_unanswered_past_its_transaction_is_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Still pending 35 s after its REGISTER (a transaction times out at 30 s): lost."""
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    refresh_sent(fake, "REGISTERING_STATE", 34)
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["lost"]


@pytest.mark.parametrize("api_ahead", [90, -90], ids=["ahead", "behind"])
async def test_a_refresh_is_judged_on_the_apis_clock(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    api_ahead: int,
) -> None:
    """Telzino's clock 90 s ahead or behind: a refresh is judged on Telzino's clock.

    It holds until 35 s after its REGISTER on that clock, which the answers'
    Date headers show: no false alarm, none missed.
    """
    fake.clock = lambda: time.time() + api_ahead
    fake.date_from_clock = True
    fake.add_agent("Front desk", FRONT_DESK)
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    seen: list[str] = []
    refresh_sent(fake, "REGISTERING_STATE", 20)
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert events(hass, seen) == []
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["lost"]


@pytest.mark.parametrize("register_time", ["missing", "not moved"])
async def test_a_refresh_of_unknown_start_has_a_grace_period(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    register_time: str,
) -> None:
    """A refresh whose REGISTER time is unknown counts as one for five minutes.

    From when the agent was last seen registered. Unknown: no
    lastRegisterSent, or one no later than the one shown while registered (an
    API that lags, or does not update it), which says nothing of when the
    refresh began.
    """
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    sent = (
        None
        if register_time == "missing"
        else fake.agents[FRONT_DESK].last_register_sent
    )
    fake.set_state(FRONT_DESK, "REGISTERING_STATE", last_register_sent=sent)
    await poll(hass, freezer, 60)
    assert hass.states.get(REGISTERED).state == STATE_ON
    fake.set_state(FRONT_DESK, "AUTHENTICATING_STATE", last_register_sent=sent)
    await poll(hass, freezer, 180)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert events(hass, seen) == []
    await poll(hass, freezer, 120)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["lost"]


@pytest.mark.parametrize(
    ("registered_again", "register_times", "watch_refresh"),
    [
        (True, True, True),
        (False, True, True),
        (False, False, True),
        (False, True, False),
    ],
    ids=[
        "registered again",
        "not registered again",
        "without register times",
        "refresh watch off",
    ],
)
async def test_a_reload_that_meets_a_pending_refresh_is_not_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    registered_again: bool,
    register_times: bool,
    watch_refresh: bool,
) -> None:
    """A reload during a refresh's REGISTER: no loss until the next tick registers.

    NOT_REGISTERED while enabled, right after a refresh began: OpenSIPS
    registers again at its next timer tick, and the old binding takes calls
    meanwhile. Lost only when that tick and a reply's grace have passed.
    """
    fake.clock = time.time
    # Without register times, or without the refresh watch, the ticks are
    # not known: a default timer's from the reload bounds it.
    no_times = {} if register_times else {"last_register_sent": None}
    fake.add_agent("Front desk", FRONT_DESK, **no_times)
    entry = make_entry(fake_url, [FRONT_DESK], watch_refresh=watch_refresh)
    await setup_entry(hass, entry)
    seen: list[str] = []
    refresh_sent(fake, "REGISTERING_STATE", 10)
    if not register_times:
        fake.agents[FRONT_DESK].last_register_sent = None
    await poll(hass, freezer)
    sent = fake.agents[FRONT_DESK].last_register_sent
    # Reloaded: the REGISTER's reply is dropped, its time still shown.
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE", last_register_sent=sent)
    await poll(hass, freezer)
    assert hass.states.get(STATE).state == "not_registered"
    assert hass.states.get(REGISTERED).state == STATE_ON
    if registered_again:
        fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    # The next tick (at most 100 s after the reload) and 35 s have passed.
    await poll(hass, freezer, 90)
    await poll(hass, freezer, 60)
    assert hass.states.get(REGISTERED).state == (
        STATE_ON if registered_again else STATE_OFF
    )
    assert events(hass, seen) == ([] if registered_again else ["lost"])


@pytest.mark.parametrize(
    ("lifetime", "held"), [(3600, False), (120, True)], ids=["not due", "due"]
)
async def test_not_registered_after_registered_is_a_reload_only_at_a_refresh(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    lifetime: int,
    held: bool,
) -> None:
    """NOT_REGISTERED straight after registered: a reload only at a refresh.

    Only if a refresh was due (its REGISTER unseen between two reads) can a
    reload have met it; otherwise (new SIP settings, say) it is lost at once.
    """
    fake.clock = time.time
    fake.add_agent(
        "Front desk",
        FRONT_DESK,
        registration_timeout=lifetime,
        expires=time.time() + lifetime,
    )
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    seen: list[str] = []
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == (STATE_ON if held else STATE_OFF)
    assert events(hass, seen) == ([] if held else ["lost"])


async def test_a_reload_holds_no_longer_than_the_binding(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A binding that expires before the next tick takes no calls after its expiry."""
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    refresh_sent(fake, "REGISTERING_STATE", 10)
    await poll(hass, freezer)
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE", expires=time.time() + 30)
    await poll(hass, freezer, 20)
    assert hass.states.get(REGISTERED).state == STATE_ON
    await poll(hass, freezer, 20)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["lost"]


async def test_a_disable_that_meets_a_pending_refresh_is_no_loss_either(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """NOT_REGISTERED with the registration disabled: a choice, shown at once."""
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    refresh_sent(fake, "REGISTERING_STATE", 10)
    await poll(hass, freezer)
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE", enabled=False)
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["disabled"]


async def test_a_host_clock_far_off_is_a_repair_issue(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Ten minutes off Telzino's clock: a repair issue says so, and goes once fixed.

    Meanwhile the signal holds: the refresh in progress is judged on Telzino's
    clock.
    """
    skew = [-600.0]
    fake.clock = lambda: time.time() + skew[0]
    fake.date_from_clock = True
    fake.add_agent("Front desk", FRONT_DESK)
    entry = await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    issue_id = f"clock_offset_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "account": entry.title,
        "minutes": "10",
    }
    refresh_sent(fake, "REGISTERING_STATE", 20)
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    # The host's clock is set right: once most recent answers show it.
    skew[0] = 0.0
    for _ in range(10):
        await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_registering_without_a_registration_before_is_not_registered(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A first registration in progress is no refresh: nothing is registered yet."""
    fake.add_agent("Front desk", FRONT_DESK, state="REGISTERING_STATE")
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    assert hass.states.get(REGISTERED).state == STATE_OFF
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_OFF


@pytest.mark.parametrize("enabled_while_unregistering", [True, False])
async def test_disabling_the_registration_is_not_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    enabled_while_unregistering: bool,
) -> None:
    """Disabling unregisters: `disabled`, not `lost`; re-enabling is `registered`."""
    seen: list[str] = []
    fake.set_state(
        FRONT_DESK, "UNREGISTERING_STATE", enabled=enabled_while_unregistering
    )
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert hass.states.get(STATE).state == "unregistering"
    assert events(hass, seen) == ["disabled"]
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE", enabled=False)
    await poll(hass, freezer)
    assert events(hass, seen) == ["changed"]

    for state in ("NOT_FOUND", "REGISTERING_STATE", "REGISTERED_STATE"):
        fake.set_state(FRONT_DESK, state)
        await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(EVENT).attributes["event_type"] == "registered"


@pytest.mark.parametrize(
    ("stored", "event"),
    [
        # Registered before the stop, lost now: reported once.
        ({"can_receive_calls": True, "registration_state": "registered"}, "lost"),
        # Lost before the stop, registered now: back.
        (
            {"can_receive_calls": False, "registration_state": "register_timeout"},
            "registered",
        ),
        # Nothing stored, or junk: the first reading only learns the state.
        ({}, None),
        ({"can_receive_calls": True, "registration_state": "no_such_state"}, None),
    ],
)
async def test_a_change_while_home_assistant_was_stopped_is_reported_once(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    stored: dict[str, object],
    event: str | None,
) -> None:
    """The event entity compares its first reading with the one before the stop."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(EVENT, "2026-11-01T00:00:00.000+00:00"),
                {"last_event_type": None, "last_event_attributes": None, **stored},
            )
        ],
    )
    now_registered = event != "lost"
    fake.add_agent(
        "Front desk",
        FRONT_DESK,
        state="REGISTERED_STATE" if now_registered else "REGISTER_TIMEOUT_STATE",
    )
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    state = hass.states.get(EVENT)
    assert state.attributes.get("event_type") == event
    fired = state.state

    await poll(hass, freezer)
    assert hass.states.get(EVENT).state == fired  # once, not at every poll


async def test_the_last_reading_is_stored_for_the_next_start(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """What the restart check compares with: the last reading and the last event."""
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer, timedelta(minutes=1).total_seconds())
    lost_since = dt_util.utcnow().isoformat()
    entity = hass.data["entity_components"]["event"].get_entity(EVENT)
    stored = entity.extra_restore_state_data.as_dict()
    assert stored == {
        "last_event_type": "lost",
        "last_event_attributes": {
            "previous_state": "registered",
            "state": "register_timeout",
            "message": "Registration timed out: no reply received",
            # The Lost since and Last outage sensors' values, for automations.
            "lost_since": lost_since,
            "last_outage": None,
        },
        "can_receive_calls": False,
        "registration_state": "register_timeout",
    }
