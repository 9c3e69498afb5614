"""Sensors of a Telzino agent: registration state, expiry and diagnostics."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import RegistrationState, RegistrationStatus
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .entity import TelzinoEntity, async_add_agent_entities

# Read-only entities fed by a coordinator.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class TelzinoSensorEntityDescription(SensorEntityDescription):
    """Describes a Telzino sensor."""

    value_fn: Callable[[RegistrationStatus], str | int | datetime | None]


SENSORS: tuple[TelzinoSensorEntityDescription, ...] = (
    TelzinoSensorEntityDescription(
        key="registration_state",
        translation_key="registration_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in RegistrationState],
        value_fn=lambda status: status.state.value,
    ),
    TelzinoSensorEntityDescription(
        key="registration_expires",
        translation_key="registration_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: status.expires,
    ),
    TelzinoSensorEntityDescription(
        key="last_register_sent",
        translation_key="last_register_sent",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: status.last_register_sent,
    ),
    TelzinoSensorEntityDescription(
        key="registration_interval",
        translation_key="registration_interval",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda status: status.registration_interval,
    ),
    TelzinoSensorEntityDescription(
        key="status_message",
        translation_key="status_message",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda status: status.error_message,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TelzinoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up sensors for every watched agent."""

    def create(coordinator: TelzinoCoordinator, agent_id: str) -> list[TelzinoSensor]:
        return [
            TelzinoSensor(coordinator, agent_id, description) for description in SENSORS
        ]

    async_add_agent_entities(entry, async_add_entities, create)


class TelzinoSensor(TelzinoEntity, SensorEntity):
    """A sensor of one agent's registration."""

    entity_description: TelzinoSensorEntityDescription

    @property
    @override
    def native_value(self) -> str | int | datetime | None:
        """Return the value from the last poll."""
        status = self.status
        return self.entity_description.value_fn(status) if status else None
