"""Binary sensors of a Telzino agent: registered, registration enabled."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .data import AgentData
from .entity import TelzinoEntity, async_add_agent_entities

# Read-only entities fed by a coordinator.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class TelzinoBinarySensorEntityDescription(BinarySensorEntityDescription):
    """Describes a Telzino binary sensor."""

    is_on_fn: Callable[[AgentData], bool | None]


BINARY_SENSORS: tuple[TelzinoBinarySensorEntityDescription, ...] = (
    TelzinoBinarySensorEntityDescription(
        key="registered",
        translation_key="registered",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        # Receives calls now: a refresh in progress is not a loss.
        is_on_fn=lambda agent: agent.can_receive_calls if agent.status else None,
    ),
    TelzinoBinarySensorEntityDescription(
        key="registration_enabled",
        translation_key="registration_enabled",
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda agent: agent.status.enabled if agent.status else None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TelzinoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up binary sensors for every watched agent."""

    def create(
        coordinator: TelzinoCoordinator, agent_id: str
    ) -> list[TelzinoBinarySensor]:
        return [
            TelzinoBinarySensor(coordinator, agent_id, description)
            for description in BINARY_SENSORS
        ]

    async_add_agent_entities(entry, async_add_entities, create)


class TelzinoBinarySensor(TelzinoEntity, BinarySensorEntity):
    """A binary sensor of one agent's registration."""

    entity_description: TelzinoBinarySensorEntityDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """Return the value from the last poll."""
        agent = self.agent
        return self.entity_description.is_on_fn(agent) if agent else None
