"""What "Registered" means: the agent can receive calls now.

A refresh in progress is not a loss, a registration the user disabled is not a
loss, and a loss that began while Home Assistant was stopped is reported once.
"""

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)

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
    """Set up Front desk registered, its binding expiring in an hour of HA's time."""
    fake.add_agent(
        "Front desk", FRONT_DESK, expires=dt_util.utcnow().timestamp() + 3600
    )
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))


async def test_a_refresh_in_progress_is_not_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Registering again before the binding expires keeps Registered on, no event.

    The state sensor still shows what the API says.
    """
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    fake.set_state(FRONT_DESK, "REGISTERING_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(STATE).state == "registering"
    fake.set_state(FRONT_DESK, "AUTHENTICATING_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert events(hass, seen) == []


async def test_a_refresh_past_the_binding_expiry_is_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Once the old binding has expired, a registration still pending is lost."""
    await registered_for_an_hour(hass, fake, fake_url)
    seen: list[str] = []
    fake.set_state(FRONT_DESK, "REGISTERING_STATE")
    await poll(hass, freezer)
    assert hass.states.get(REGISTERED).state == STATE_ON
    # Past the expiry, a reply may still come within the SIP transaction time.
    await poll(hass, freezer, 3600 - 60 + 20)
    assert hass.states.get(REGISTERED).state == STATE_ON
    await poll(hass, freezer, 20)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["lost"]


async def test_a_refresh_of_a_binding_without_expiry_has_a_grace_period(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Without an expiry from the API, a refresh counts as one for five minutes."""
    fake.add_agent("Front desk", FRONT_DESK)
    fake.set_state(FRONT_DESK, "REGISTERED_STATE", expires=None)
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    seen: list[str] = []
    fake.set_state(FRONT_DESK, "REGISTERING_STATE")
    await poll(hass, freezer, 60)
    assert hass.states.get(REGISTERED).state == STATE_ON
    await poll(hass, freezer, 180)
    assert hass.states.get(REGISTERED).state == STATE_ON
    await poll(hass, freezer, 120)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    assert events(hass, seen) == ["lost"]


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
