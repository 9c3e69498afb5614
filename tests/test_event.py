"""The registration event entity of a Telzino agent."""

from unittest.mock import patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from tests.common import make_entry, setup_entry


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_all_entities(
    hass: HomeAssistant,
    fake_url: str,
    agents: list[str],
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The event entity of every agent, before any event."""
    with patch("custom_components.telzino.PLATFORMS", [Platform.EVENT]):
        entry = await setup_entry(hass, make_entry(fake_url, agents))
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
