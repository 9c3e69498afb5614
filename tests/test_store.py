"""What an entry keeps across reloads and restarts: its agents and its budget.

A reload or restart that meets a refused agent list, or a rate limit, still
reads the agents it knew, at the pace it had learned.
"""

import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest

from custom_components.telzino.const import DOMAIN
from custom_components.telzino.store import storage_key
from scripts.fake_telzino import AGENTS, FRONT_DESK, SALES_LINE, FakeTelzino
from tests.common import make_entry, poll, run_for, setup_entry

REGISTERED = (
    "binary_sensor.front_desk_registered",
    "binary_sensor.sales_line_registered",
)


@pytest.mark.parametrize(
    "refusal",
    [
        {"status": 429, "retry_after": "300", "times": 1},
        {"status": 500},
        {
            "status": 200,
            "body": "<html>maintenance</html>",
            "content_type": "text/html",
        },
    ],
    ids=["429", "500", "not JSON"],
)
async def test_a_refused_agent_list_keeps_what_is_watched(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    refusal: dict[str, Any],
) -> None:
    """*Watch all agents*, reloaded while the agent list is refused: both still read."""
    fake.clock = time.time
    entry = await setup_entry(hass, make_entry(fake_url, [], all_agents=True))
    assert {hass.states.get(entity_id).state for entity_id in REGISTERED} == {STATE_ON}
    fake.inject(AGENTS, **refusal)
    fake.set_state(SALES_LINE, "REGISTER_TIMEOUT_STATE")

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    # The stored list stands in for the refused one: read at once, or (a 429)
    # once its Retry-After has ended; never unavailable meanwhile.
    assert STATE_UNAVAILABLE not in {
        hass.states.get(entity_id).state for entity_id in REGISTERED
    }
    if refusal["status"] == 429:
        await run_for(hass, freezer, 310)
    assert hass.states.get(REGISTERED[0]).state == STATE_ON
    assert hass.states.get(REGISTERED[1]).state == "off"
    assert {
        identifier
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        for domain, identifier in device.identifiers
        if domain == DOMAIN
    } >= {FRONT_DESK, SALES_LINE}


async def test_the_learned_budget_and_its_wait_survive_a_reload(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A rate learned from 429s, and the wait a 429 asked for, outlast the reload.

    Nothing is sent before the Retry-After ends, the new entry's token and
    agent list included; then the reads go at the rate learned before.
    """
    fake.clock = time.time
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    budget = entry.runtime_data.client.budget
    budget.restore({"source": "429s", "limit_rate": 0.5})
    fake.inject("status", status=429, retry_after="120", times=2)
    await poll(hass, freezer)
    assert budget.blocked_for() > 60
    learned = budget.limit_rate
    requests_before = sum(fake.stats.requests.values())

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    reloaded = entry.runtime_data.client.budget
    assert reloaded is not budget
    assert reloaded.source == "429s"
    assert reloaded.limit_rate == pytest.approx(learned)
    assert reloaded.blocked_for() > 60
    assert sum(fake.stats.requests.values()) == requests_before
    # The wait, then the token, the agent list and the two reads at the rate
    # learned (4 requests at 0.24 a second).
    await run_for(hass, freezer, 140)
    assert {hass.states.get(entity_id).state for entity_id in REGISTERED} == {STATE_ON}


async def test_a_stored_state_that_cannot_be_read_starts_afresh(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    fake_url: str,
    agents: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Junk in the file: one warning, and the entry starts as if new."""
    entry = make_entry(fake_url, agents)
    hass_storage[storage_key(entry.entry_id)] = {
        "version": 1,
        "key": storage_key(entry.entry_id),
        "data": {"agents": [{"name": "no id"}], "budget": {"source": "429s"}},
    }
    await setup_entry(hass, entry)
    assert "Starting without the stored agents and budget" in caplog.text
    assert entry.runtime_data.client.budget.source is None
    assert {hass.states.get(entity_id).state for entity_id in REGISTERED} == {STATE_ON}


async def test_removing_the_entry_removes_its_state(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    fake_url: str,
    agents: list[str],
) -> None:
    """Unloading writes the agents and budget; removing the entry deletes them."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[storage_key(entry.entry_id)]["data"]
    assert {agent["id"] for agent in stored["agents"]} == {FRONT_DESK, SALES_LINE}
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert storage_key(entry.entry_id) not in hass_storage
