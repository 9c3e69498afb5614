"""Setup, polling, availability, repairs and devices, against the fake API."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_platform,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.telzino import async_remove_config_entry_device
from custom_components.telzino.const import DOMAIN
from custom_components.telzino.repairs import async_create_fix_flow
from scripts.fake_telzino import (
    AGENTS,
    FRONT_DESK,
    SALES_LINE,
    STATUS,
    TOKEN,
    FakeTelzino,
)
from tests.common import make_entry, poll, setup_entry

FRONT_REGISTERED = "binary_sensor.front_desk_registered"
FRONT_STATE = "sensor.front_desk_registration_state"
FRONT_EXPIRES = "sensor.front_desk_registration_expires"
FRONT_EVENT = "event.front_desk_registration"
SALES_REGISTERED = "binary_sensor.sales_line_registered"


async def test_setup_and_poll_call_budget(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """100 agents: 1 token, one list pass, then exactly 100 status requests a poll."""
    agent_ids = [agent.id for agent in fake.add_agents(100)]
    entry = await setup_entry(hass, make_entry(fake_url, agent_ids))
    assert entry.state is ConfigEntryState.LOADED
    assert fake.stats.requests == {TOKEN: 1, AGENTS: 1, STATUS: 100}

    for _ in range(3):
        fake.reset_stats()
        await poll(hass, freezer)
        assert fake.stats.requests == {STATUS: 100}
    assert hass.states.get("binary_sensor.agent_099_registered").state == STATE_ON


async def test_state_changes_show_at_the_next_poll(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """State changes show at the next poll."""
    assert hass.states.get(FRONT_REGISTERED).state == STATE_ON
    assert hass.states.get(FRONT_STATE).state == "registered"
    assert hass.states.get(FRONT_EXPIRES).state == "2026-11-18T12:06:40+00:00"

    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)

    assert hass.states.get(FRONT_REGISTERED).state == STATE_OFF
    assert hass.states.get(FRONT_STATE).state == "register_timeout"
    # Not registered: the expiry is unknown, never 1970.
    assert hass.states.get(FRONT_EXPIRES).state == STATE_UNKNOWN
    assert hass.states.get(SALES_REGISTERED).state == STATE_ON


async def test_a_poll_writes_only_what_changed(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Unchanged agents write no state: no event-loop work, last_reported kept."""
    entity_ids = [
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            entity_registry, init_integration.entry_id
        )
        if entry.disabled_by is None
    ]
    reported = {
        entity_id: hass.states.get(entity_id).last_reported for entity_id in entity_ids
    }

    def written() -> set[str]:
        return {
            entity_id
            for entity_id in entity_ids
            if hass.states.get(entity_id).last_reported != reported[entity_id]
        }

    await poll(hass, freezer)
    assert written() == set()

    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    assert FRONT_REGISTERED in written()
    assert {entity_id.split(".")[1][:10] for entity_id in written()} == {"front_desk"}


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_a_poll_that_changes_nothing_fires_no_state_event(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Nothing changed: no state_changed or state_reported for any Telzino entity.

    Front desk had an outage, so its uptime moves with time; the history's
    minute tick writes that, a poll that changed nothing must not.
    """
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    ours = {
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            er.async_get(hass), init_integration.entry_id
        )
    }
    written: list[tuple[str, str]] = []

    @callback
    def ours_only(data: Mapping[str, Any]) -> bool:
        return data["entity_id"] in ours

    @callback
    def record(event: Event[Any]) -> None:
        written.append((event.event_type, event.data["entity_id"]))

    for event_type in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED):
        hass.bus.async_listen(event_type, record, event_filter=ours_only)
    coordinator = init_integration.runtime_data
    for _ in range(3):
        # A poll alone, between two of the history's minute ticks.
        freezer.tick(timedelta(seconds=15))
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    assert coordinator.last_update_success
    assert written == []

    # The same listener sees a change: the test can fail.
    fake.set_state(SALES_LINE, "WRONG_CREDENTIALS_STATE")
    freezer.tick(timedelta(seconds=60))  # every agent's read is due again
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert (EVENT_STATE_CHANGED, SALES_REGISTERED) in written


async def test_a_lasting_agent_failure_writes_nothing_new(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An agent that fails the same way poll after poll is written once.

    Its error is kept as a value, so equal polls compare equal.
    """
    fake.inject(STATUS, FRONT_DESK, status=500)
    await poll(hass, freezer)
    unavailable = hass.states.get(FRONT_REGISTERED)
    assert unavailable.state == STATE_UNAVAILABLE
    coordinator = init_integration.runtime_data
    first = coordinator.data

    await poll(hass, freezer)
    assert coordinator.data == first
    assert hass.states.get(FRONT_REGISTERED).last_reported == unavailable.last_reported


async def test_one_agent_failing_leaves_the_others_updating(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One agent failing leaves the others updating."""
    fake.inject(STATUS, FRONT_DESK, status=200, body='{"data": {"state": 5}}')
    fake.set_state(SALES_LINE, "REGISTRAR_ERROR_STATE")
    await poll(hass, freezer)
    await poll(hass, freezer)

    assert hass.states.get(FRONT_REGISTERED).state == STATE_UNAVAILABLE
    assert hass.states.get(SALES_REGISTERED).state == STATE_OFF
    assert caplog.text.count("Status of agent Front desk") == 1

    fake.clear_faults()
    await poll(hass, freezer)
    assert hass.states.get(FRONT_REGISTERED).state == STATE_ON
    assert f"Status of agent Front desk ({FRONT_DESK}) is back" in caplog.text


async def test_rejected_credentials_at_setup_start_reauth(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Rejected credentials at setup start reauth."""
    fake.clients.clear()
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_unreachable_api_at_setup_retries(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Unreachable api at setup retries."""
    fake.inject(AGENTS, status=503)
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_deleted_agent_raises_fixable_repair(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Deleted agent raises fixable repair."""
    del fake.agents[SALES_LINE]
    await poll(hass, freezer)

    assert hass.states.get(SALES_REGISTERED).state == STATE_UNAVAILABLE
    assert hass.states.get(FRONT_REGISTERED).state == STATE_ON
    issue = issue_registry.async_get_issue(DOMAIN, f"agent_not_found_{SALES_LINE}")
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {
        "agent": "Sales line",
        "agent_id": SALES_LINE,
    }

    # The fix flow stops watching the agent and removes its device.
    assert await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    assert flow["step_id"] == "confirm"
    result = await manager.async_configure(flow["flow_id"], {})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()

    assert init_integration.options["agents"] == [FRONT_DESK]
    assert init_integration.state is ConfigEntryState.LOADED
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, SALES_LINE), init_integration.entry_id
        )
        is None
    )
    assert hass.states.get(SALES_REGISTERED) is None
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is None


async def test_repair_flow_of_a_removed_entry_aborts(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Repair flow of a removed entry aborts."""
    flow = await async_create_fix_flow(
        hass, "x", {"entry_id": "gone", "agent_id": SALES_LINE}
    )
    flow.hass = hass
    result = await flow.async_step_init()
    assert result["type"] == "abort"
    assert result["reason"] == "entry_removed"


async def test_wrong_sip_credentials_raise_and_clear_a_repair(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Wrong sip credentials raise and clear a repair."""
    issue_id = f"wrong_credentials_{FRONT_DESK}"
    fake.set_state(FRONT_DESK, "WRONG_CREDENTIALS_STATE")
    await poll(hass, freezer)

    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert not issue.is_fixable
    assert issue.translation_key == "wrong_credentials"
    assert issue.translation_placeholders["agent"] == "Front desk"
    assert hass.states.get(FRONT_STATE).state == "wrong_credentials"

    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_events_fire_on_transitions_only(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Events fire on transitions only."""

    def last_event() -> tuple[str, dict[str, object]]:
        state = hass.states.get(FRONT_EVENT)
        return state.attributes["event_type"], {
            key: state.attributes[key] for key in ("previous_state", "state", "message")
        }

    # The first poll after start only learns the state.
    assert hass.states.get(FRONT_EVENT).state == STATE_UNKNOWN
    await poll(hass, freezer)
    assert hass.states.get(FRONT_EVENT).state == STATE_UNKNOWN

    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    assert last_event() == (
        "lost",
        {
            "previous_state": "registered",
            "state": "register_timeout",
            "message": "Registration timed out: no reply received",
        },
    )
    fired = hass.states.get(FRONT_EVENT).state

    await poll(hass, freezer)  # same state: nothing new
    assert hass.states.get(FRONT_EVENT).state == fired

    fake.set_state(FRONT_DESK, "WRONG_CREDENTIALS_STATE")
    await poll(hass, freezer)
    assert last_event()[0] == "changed"

    # Unreadable for a while, then registered: compared with the last known state.
    fake.inject(STATUS, FRONT_DESK, status=500)
    await poll(hass, freezer)
    assert hass.states.get(FRONT_EVENT).state == STATE_UNAVAILABLE
    fake.clear_faults()
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert last_event() == (
        "registered",
        {
            "previous_state": "wrong_credentials",
            "state": "registered",
            "message": "Successfully registered",
        },
    )
    assert hass.states.get("event.sales_line_registration").state == STATE_UNKNOWN


async def test_all_agents_follows_the_account(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """All agents follows the account."""
    entry = await setup_entry(hass, make_entry(fake_url, agents, all_agents=True))
    assert hass.states.get(FRONT_REGISTERED).state == STATE_ON

    new = fake.add_agent("Night line")
    del fake.agents[SALES_LINE]
    fake.agents[FRONT_DESK].name = "Reception"
    await poll(hass, freezer)
    # The list is re-read hourly; a 404 brings that forward to the next poll.
    assert hass.states.get("binary_sensor.night_line_registered") is None
    await poll(hass, freezer)

    assert hass.states.get("binary_sensor.night_line_registered").state == STATE_ON
    assert hass.states.get(SALES_REGISTERED) is None
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, SALES_LINE), entry.entry_id
        )
        is None
    )
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, FRONT_DESK), entry.entry_id
        ).name
        == "Reception"
    )
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, new.id), entry.entry_id
        ).name
        == "Night line"
    )

    # An agent that comes back gets its entities back.
    fake.add_agent("Sales line", SALES_LINE)
    await poll(hass, freezer, 3600)
    assert hass.states.get(SALES_REGISTERED).state == STATE_ON


async def test_agent_names_refresh_hourly(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A renamed agent renames its device at the next hourly list pass."""
    fake.agents[FRONT_DESK].name = "Reception"
    fake.reset_stats()
    await poll(hass, freezer, 3599)
    assert fake.stats.requests[AGENTS] == 0

    # A failing list pass keeps the known names and does not fail the poll.
    fake.inject(AGENTS, status=503, times=1)
    await poll(hass, freezer, 60)
    assert hass.states.get(FRONT_REGISTERED).state == STATE_ON
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, FRONT_DESK), init_integration.entry_id
    )
    assert device.name == "Front desk"

    await poll(hass, freezer, 60)
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, FRONT_DESK), init_integration.entry_id
    )
    assert device.name == "Reception"
    # So do the options flow's agent list, repair issues and diagnostics,
    # though the agent's status answer did not change.
    assert init_integration.runtime_data.data[FRONT_DESK].name == "Reception"


async def test_credentials_that_cannot_list_agents(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Watched agents are still polled; their devices are named by ID."""
    fake.inject(AGENTS, status=403)
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    assert entry.state is ConfigEntryState.LOADED
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, FRONT_DESK), entry.entry_id
    )
    assert device.name == FRONT_DESK
    await poll(hass, freezer, 3600)
    assert device_registry.async_get(device.id) is not None
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", DOMAIN, f"{FRONT_DESK}_registered"
    )
    assert hass.states.get(entity_id).state == STATE_ON

    # Watching all agents needs the list: without it the poll fails.
    all_entry = await setup_entry(
        hass,
        make_entry(
            fake_url, [], all_agents=True, entry_id="01JTELZINOTESTENTRY000000B"
        ),
    )
    assert all_entry.state is ConfigEntryState.SETUP_RETRY


async def test_the_registered_sensors_come_first_within_the_entity_limit(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    entity_registry: er.EntityRegistry,
) -> None:
    """Home Assistant adds at most so many enabled entities per entry: the signal first.

    An account with a thousand agents has more enabled entities than the
    10,000 an entry may have; the sensors set up beside the Registered
    sensors took the limit first in about half the runs, and half the
    agents had no Registered sensor at all. Here the limit is 20 and there
    are 5 agents: each agent's two binary sensors and its event (15) come
    first, whatever is left goes to the sensors.
    """
    agent_ids = [agent.id for agent in fake.add_agents(5)]
    with patch.object(entity_platform, "MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY", 20):
        entry = await setup_entry(hass, make_entry(fake_url, agent_ids))
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    for agent_id in agent_ids:
        assert {f"{agent_id}_registered", f"{agent_id}_registration"} <= {
            entity.unique_id for entity in entities
        }
    assert (
        sum(entity.domain == "sensor" and not entity.disabled for entity in entities)
        == 5
    )


async def test_unload_and_remove(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Unloading leaves entities unavailable; removal drops its issues, not others."""
    fake.set_state(FRONT_DESK, "WRONG_CREDENTIALS_STATE")
    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, f"wrong_credentials_{FRONT_DESK}")

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get(FRONT_REGISTERED).state == STATE_UNAVAILABLE

    ir.async_create_issue(
        hass,
        "other",
        "other_issue",
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="x",
    )
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert not issue_registry.async_get_issue(DOMAIN, f"wrong_credentials_{FRONT_DESK}")
    assert issue_registry.async_get_issue("other", "other_issue")


async def test_only_unwatched_devices_can_be_deleted(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Only unwatched devices can be deleted."""
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, FRONT_DESK), init_integration.entry_id
    )
    assert not await async_remove_config_entry_device(hass, init_integration, device)

    hass.config_entries.async_update_entry(
        init_integration,
        options={**init_integration.options, "agents": [SALES_LINE]},
    )
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert await async_remove_config_entry_device(hass, init_integration, device)
    # The account's device (its polling sensors) lives as long as the entry.
    account = device_registry.async_get_device_by_identifier(
        (DOMAIN, init_integration.entry_id), init_integration.entry_id
    )
    assert not await async_remove_config_entry_device(hass, init_integration, account)


@pytest.mark.parametrize(
    ("all_agents", "deletable"),
    [(False, {SALES_LINE}), (True, {FRONT_DESK, SALES_LINE})],
)
async def test_devices_can_be_deleted_while_the_entry_is_not_loaded(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    device_registry: dr.DeviceRegistry,
    all_agents: bool,
    deletable: set[str],
) -> None:
    """While setup retries, deleting a device is decided from the options.

    With all agents watched, nothing says which agents exist: a deleted
    device comes back at the next setup if its agent still exists.
    """
    entry = make_entry(fake_url, [FRONT_DESK], all_agents=all_agents)
    entry.add_to_hass(hass)
    devices = {
        agent_id: device_registry.async_get_or_create(
            config_entry_id=entry.entry_id, identifiers={(DOMAIN, agent_id)}
        )
        for agent_id in agents
    }
    fake.inject(AGENTS, status=503)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY

    allowed = {
        agent_id
        for agent_id, device in devices.items()
        if await async_remove_config_entry_device(hass, entry, device)
    }
    assert allowed == deletable


async def test_renamed_sensor_keeps_its_entity_and_history(
    hass: HomeAssistant,
    fake_url: str,
    agents: list[str],
    entity_registry: er.EntityRegistry,
) -> None:
    """The registration interval sensor's old unique ID is migrated, not orphaned."""
    entry = make_entry(fake_url, agents)
    entry.add_to_hass(hass)
    old = entity_registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{FRONT_DESK}_registration_timeout",
        config_entry=entry,
        suggested_object_id="front_desk_registration_interval",
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    migrated = entity_registry.async_get(old.entity_id)
    assert migrated is not None
    assert migrated.id == old.id
    assert migrated.unique_id == f"{FRONT_DESK}_registration_interval"
    assert not entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"{FRONT_DESK}_registration_timeout"
    )
    # Nothing else is renamed.
    assert entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, f"{FRONT_DESK}_registered"
    )


async def test_device(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Each agent is a device of a cloud service, named after the agent."""
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, FRONT_DESK), init_integration.entry_id
    )
    assert device == snapshot


async def test_foreign_devices_are_left_alone(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Foreign devices are left alone."""
    entry = make_entry(fake_url, agents, all_agents=True)
    entry.add_to_hass(hass)
    other = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("other", "x")}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(other.id) is not None
    await poll(hass, freezer, timedelta(hours=1).total_seconds())
    assert device_registry.async_get(other.id) is not None


async def test_no_event_for_the_first_state_after_an_unreadable_start(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
) -> None:
    """No event for the first state after an unreadable start."""
    fake.inject(STATUS, FRONT_DESK, status=500)
    await setup_entry(hass, make_entry(fake_url, agents))
    assert hass.states.get(FRONT_EVENT).state == STATE_UNAVAILABLE

    fake.clear_faults()
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    assert hass.states.get(FRONT_EVENT).state == STATE_UNKNOWN
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    assert hass.states.get(FRONT_EVENT).attributes["event_type"] == "registered"


async def test_repair_flow_when_the_device_is_already_gone(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Repair flow when the device is already gone."""
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, SALES_LINE), init_integration.entry_id
    )
    device_registry.async_remove_device(device.id)
    flow = await async_create_fix_flow(
        hass, "x", {"entry_id": init_integration.entry_id, "agent_id": SALES_LINE}
    )
    flow.hass = hass
    result = await flow.async_step_confirm({})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert init_integration.options["agents"] == [FRONT_DESK]


async def test_update_entity_reads_every_agent_now(
    hass: HomeAssistant, fake: FakeTelzino, init_integration: MockConfigEntry
) -> None:
    """Asked to update, the integration reads every agent at once, not at its turn."""
    await async_setup_component(hass, "homeassistant", {})
    fake.set_state(SALES_LINE, "WRONG_CREDENTIALS_STATE")
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await hass.services.async_call(
        "homeassistant",
        "update_entity",
        {"entity_id": [SALES_REGISTERED]},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert hass.states.get(SALES_REGISTERED).state == STATE_OFF
    assert hass.states.get(FRONT_REGISTERED).state == STATE_OFF
