"""Sensors of a Telzino agent: registration state, expiry and diagnostics."""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from tests.common import make_entry, setup_platform


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_all_entities(
    hass: HomeAssistant,
    fake_url: str,
    agents: list[str],
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every sensor of every agent, including those disabled by default."""
    entry = make_entry(fake_url, agents)
    await setup_platform(hass, entry, Platform.SENSOR)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
