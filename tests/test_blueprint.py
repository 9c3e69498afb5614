"""The registration-lost blueprint, loaded by Home Assistant's blueprint integration."""

from collections.abc import AsyncIterator
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from scripts.fake_telzino import FRONT_DESK, STATUS, FakeTelzino
from tests.common import make_entry, poll, setup_entry

FRONT_REGISTERED = "binary_sensor.front_desk_registered"
SALES_REGISTERED = "binary_sensor.sales_line_registered"
BLUEPRINT = (
    Path(__file__).parent.parent
    / "blueprints"
    / "automation"
    / "telzino"
    / "registration_lost.yaml"
)


@pytest.fixture
async def notifications(
    hass: HomeAssistant,
    fake_url: str,
    agents: list[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[list[ServiceCall]]:
    """Set up the integration and an automation from the blueprint (lost for 3 min).

    The automation is turned off before Home Assistant stops: the stop makes
    every entity unavailable, which starts the "cannot be read" trigger's timer.
    """
    await setup_entry(hass, make_entry(fake_url, agents))
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "telzino"
    target.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target)
    calls = async_mock_service(hass, "notify", "ops")
    inputs: dict[str, Any] = {
        "agents": ["binary_sensor.front_desk_registered"],
        "duration": {"minutes": 3},
        "notify_action": "notify.ops",
        **getattr(request, "param", {}),
    }
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "use_blueprint": {
                    "path": "telzino/registration_lost.yaml",
                    "input": inputs,
                }
            }
        },
    )
    await hass.async_block_till_done()
    yield calls
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "all"}, blocking=True
    )


async def test_notifies_when_lost_long_enough_and_when_back(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """Notifies when lost long enough (since when) and when back (after how long)."""
    fake.set_state(FRONT_DESK, "WRONG_CREDENTIALS_STATE")
    await poll(hass, freezer)
    lost_at = dt_util.as_local(dt_util.utcnow()).strftime("%H:%M")
    await poll(hass, freezer, 120)
    assert notifications == []  # lost for 2 of the 3 minutes

    await poll(hass, freezer, 61)
    assert len(notifications) == 1
    assert notifications[0].data["title"] == "Telzino: Front desk lost its registration"
    assert (
        notifications[0]
        .data["message"]
        .startswith("Front desk receives no calls: Wrong SIP credentials")
    )
    assert notifications[0].data["message"].endswith(f"(since {lost_at}).")

    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert len(notifications) == 2
    assert notifications[1].data["title"] == "Telzino: Front desk is registered again"
    # Lost at the first poll, back 120 + 61 + 60 s later.
    assert notifications[1].data["message"].endswith("after 4 min without.")


async def test_short_outage_is_not_notified(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """Short outage is not notified."""
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    await poll(hass, freezer, 600)
    assert notifications == []


@pytest.mark.parametrize("notifications", [{"notify_back": False}], indirect=True)
async def test_back_notification_can_be_turned_off(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """Back notification can be turned off."""
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    await poll(hass, freezer, 200)
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert [call.data["title"] for call in notifications] == [
        "Telzino: Front desk lost its registration"
    ]


async def disable_for_ten_minutes(
    hass: HomeAssistant, fake: FakeTelzino, freezer: FrozenDateTimeFactory
) -> None:
    """Disable Front desk's registration in Telzino, then enable it again."""
    fake.set_state(FRONT_DESK, "UNREGISTERING_STATE")
    await poll(hass, freezer)
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE", enabled=False)
    await poll(hass, freezer)
    await poll(hass, freezer, 600)
    for state in ("REGISTERING_STATE", "REGISTERED_STATE"):
        fake.set_state(FRONT_DESK, state)
        await poll(hass, freezer)


async def test_a_disabled_registration_is_not_notified(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """Disabled for ten minutes, then enabled: no lost and no back notification."""
    await disable_for_ten_minutes(hass, fake, freezer)
    assert hass.states.get("binary_sensor.front_desk_registered").state == "on"
    assert notifications == []


@pytest.mark.parametrize(
    "notifications", [{"notify_when_disabled": True}], indirect=True
)
async def test_a_disabled_registration_can_be_notified(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """With the option on, disabling notifies like a loss, and so does its end."""
    await disable_for_ten_minutes(hass, fake, freezer)
    assert [call.data["title"] for call in notifications] == [
        "Telzino: Front desk lost its registration",
        "Telzino: Front desk is registered again",
    ]


async def outage(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    minutes: int,
) -> str:
    """Make Telzino unreadable for `minutes`; return the local time it began."""
    fake.inject(STATUS, status=503)
    await poll(hass, freezer)
    began = dt_util.as_local(dt_util.utcnow()).strftime("%H:%M")
    assert hass.states.get("binary_sensor.front_desk_registered").state == "unavailable"
    for _ in range(minutes):
        await poll(hass, freezer)
    fake.clear_faults()
    await poll(hass, freezer)
    assert hass.states.get("binary_sensor.front_desk_registered").state == "on"
    return began


UNREADABLE = {"notify_unreadable": True}


@pytest.mark.parametrize("notifications", [UNREADABLE], indirect=True)
async def test_unreadable_status_is_notified_once_and_when_readable(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """With the option on: told once that nothing is watched, and once when it is."""
    began = await outage(hass, fake, freezer, 20)

    assert [call.data["title"] for call in notifications] == [
        "Telzino: registrations not watched",
        "Telzino: registrations watched again",
    ]
    unreadable, readable = (
        " ".join(call.data["message"].split()) for call in notifications
    )
    assert unreadable.startswith(
        f"The registration status of Front desk cannot be read since {began}:"
    )
    assert "would not be noticed" in unreadable
    # Unavailable at the first failed poll, readable 21 polls later.
    assert readable.endswith("can be read again, after 21 min.")


@pytest.mark.parametrize(
    "notifications",
    [{**UNREADABLE, "agents": [FRONT_REGISTERED, SALES_REGISTERED]}],
    indirect=True,
)
async def test_an_api_outage_is_one_notification_for_all_agents(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """Every watched agent unreadable at once: one message naming them, one back."""
    await outage(hass, fake, freezer, 20)

    assert len(notifications) == 2
    assert "status of Front desk, Sales line cannot" in " ".join(
        notifications[0].data["message"].split()
    )


@pytest.mark.parametrize("notifications", [UNREADABLE], indirect=True)
async def test_a_short_unreadable_spell_is_not_notified(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """Unreadable for less than the chosen 15 minutes: neither message."""
    await outage(hass, fake, freezer, 5)
    await poll(hass, freezer, 1200)
    assert notifications == []


async def test_unreadable_status_is_not_notified_by_default(
    hass: HomeAssistant,
    fake: FakeTelzino,
    freezer: FrozenDateTimeFactory,
    notifications: list[ServiceCall],
) -> None:
    """The option is off by default: an outage alone notifies nothing."""
    await outage(hass, fake, freezer, 20)
    assert notifications == []
