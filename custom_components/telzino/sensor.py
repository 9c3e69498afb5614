"""Sensors of a Telzino agent: registration state, expiry, history, diagnostics."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from homeassistant.util import dt as dt_util

from .api import RegistrationState, RegistrationStatus
from .bindings import REFRESH_STATES
from .const import DASHBOARD_URL, DOMAIN, MANUFACTURER
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .entity import TelzinoEntity, async_add_agent_entities
from .history import DAY, AgentHistory

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
        # Only a binding expires: for a failed agent the API's expires may be
        # OpenSIPS' retry threshold, in the future (Next registration attempt).
        value_fn=lambda status: (
            status.expires
            if status.is_registered or status.state in REFRESH_STATES
            else None
        ),
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
        # Shown in minutes ("60 min"); the API gives seconds.
        suggested_unit_of_measurement=UnitOfTime.MINUTES,
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


@dataclass(frozen=True, kw_only=True)
class TelzinoHistorySensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of an agent's stored history."""

    # The agent's history and the time now (Unix seconds).
    value_fn: Callable[[AgentHistory, float], float | int | datetime | None]


def _uptime(window: float) -> Callable[[AgentHistory, float], float | None]:
    def value(history: AgentHistory, now: float) -> float | None:
        ratio = history.uptime(window, now)
        return None if ratio is None else round(ratio * 100, 2)

    return value


def _uptime_description(
    name: str, window: float, *, enabled: bool
) -> TelzinoHistorySensorEntityDescription:
    return TelzinoHistorySensorEntityDescription(
        key=f"uptime_{name}",
        translation_key=f"uptime_{name}",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_registry_enabled_default=enabled,
        value_fn=_uptime(window),
    )


def _timestamp(when: float | None) -> datetime | None:
    return None if when is None else datetime.fromtimestamp(when, UTC)


HISTORY_SENSORS: tuple[TelzinoHistorySensorEntityDescription, ...] = (
    TelzinoHistorySensorEntityDescription(
        key="lost_since",
        translation_key="lost_since",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda history, _: _timestamp(history.lost_since),
    ),
    TelzinoHistorySensorEntityDescription(
        key="last_outage",
        translation_key="last_outage",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        # "72.7 min" reads at a glance where "4,362 s" does not.
        suggested_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=1,
        value_fn=lambda history, _: (
            None if history.last_outage is None else round(history.last_outage)
        ),
    ),
    _uptime_description("24h", DAY, enabled=True),
    _uptime_description("7d", 7 * DAY, enabled=False),
    _uptime_description("30d", 30 * DAY, enabled=False),
    TelzinoHistorySensorEntityDescription(
        key="losses_24h",
        translation_key="losses_24h",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda history, now: history.losses(DAY, now),
    ),
)


@dataclass(frozen=True, kw_only=True)
class TelzinoAccountSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of the account: how its agents are polled."""

    # (effective interval in seconds, request budget per hour or None)
    value_fn: Callable[[tuple[int, int | None]], int | None]


ACCOUNT_SENSORS: tuple[TelzinoAccountSensorEntityDescription, ...] = (
    TelzinoAccountSensorEntityDescription(
        key="polling_interval",
        translation_key="polling_interval",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        entity_category=EntityCategory.DIAGNOSTIC,
        # How often each agent is read: the configured interval, or longer
        # when the API's request budget does not allow it.
        value_fn=lambda figures: figures[0],
    ),
    TelzinoAccountSensorEntityDescription(
        key="request_budget",
        translation_key="request_budget",
        native_unit_of_measurement="requests/h",
        entity_category=EntityCategory.DIAGNOSTIC,
        # Unknown until the API shows a limit (headers or a 429).
        value_fn=lambda figures: figures[1],
    ),
)


NEXT_ATTEMPT = SensorEntityDescription(
    key="next_registration_attempt",
    translation_key="next_registration_attempt",
    device_class=SensorDeviceClass.TIMESTAMP,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TelzinoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up sensors for every watched agent."""

    def create(coordinator: TelzinoCoordinator, agent_id: str) -> list[Entity]:
        return [
            *(TelzinoSensor(coordinator, agent_id, desc) for desc in SENSORS),
            TelzinoNextAttemptSensor(coordinator, agent_id, NEXT_ATTEMPT),
            *(
                TelzinoHistorySensor(coordinator, agent_id, desc)
                for desc in HISTORY_SENSORS
            ),
        ]

    async_add_agent_entities(entry, async_add_entities, create)
    async_add_entities(
        TelzinoAccountSensor(entry.runtime_data, description)
        for description in ACCOUNT_SENSORS
    )


class TelzinoSensor(TelzinoEntity, SensorEntity):
    """A sensor of one agent's registration."""

    entity_description: TelzinoSensorEntityDescription

    @property
    @override
    def native_value(self) -> str | int | datetime | None:
        """Return the value from the last poll."""
        status = self.status
        return self.entity_description.value_fn(status) if status else None


class TelzinoNextAttemptSensor(TelzinoEntity, SensorEntity):
    """When OpenSIPS will next try to register a failed agent.

    OpenSIPS retries a failed registration only at its retry threshold, about
    an hour later with the defaults, even when the registrar is back sooner.
    """

    @property
    @override
    def native_value(self) -> datetime | None:
        """Return the next attempt, unknown while registered."""
        status = self.status
        if status is None:
            return None
        return self.coordinator.bindings.next_attempt(
            self.agent_id, status, dt_util.utcnow()
        )


class TelzinoHistorySensor(TelzinoEntity, SensorEntity):
    """A sensor of one agent's stored history.

    It describes the past, which stays known while the API cannot be read, so
    it is available as long as the agent is watched; it is recomputed at every
    change and every minute (ratios move and losses age with time alone).
    """

    entity_description: TelzinoHistorySensorEntityDescription

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the history's minute ticks as well as the coordinator."""
        await super().async_added_to_hass()
        self._update_value()
        self.async_on_remove(
            self.coordinator.history.async_add_listener(self._handle_history_tick)
        )

    @property
    @override
    def available(self) -> bool:
        """Available while the agent is watched, whether or not the API answers."""
        return self.agent_id in self.coordinator.data

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self._handle_history_tick()

    @callback
    def _handle_history_tick(self) -> None:
        """Write the state when the value or the availability changed."""
        before = (self.available, self._attr_native_value)
        self._update_value()
        if (self.available, self._attr_native_value) != before:
            self.async_write_ha_state()

    def _update_value(self) -> None:
        history = self.coordinator.history.agents.get(self.agent_id)
        self._attr_native_value = (
            None
            if history is None
            else self.entity_description.value_fn(history, dt_util.utcnow().timestamp())
        )


class TelzinoAccountSensor(CoordinatorEntity[TelzinoCoordinator], SensorEntity):
    """A sensor of the account's polling, on a device of its own."""

    _attr_has_entity_name = True
    _written_available = True
    entity_description: TelzinoAccountSensorEntityDescription

    def __init__(
        self,
        coordinator: TelzinoCoordinator,
        description: TelzinoAccountSensorEntityDescription,
    ) -> None:
        """Attach the sensor to the account's device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            entry_type=DeviceEntryType.SERVICE,
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer=MANUFACTURER,
            model="Account",
            configuration_url=DASHBOARD_URL,
        )
        self._attr_native_value = description.value_fn(
            coordinator.scheduler.budget_figures()
        )

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the budget's figures, which change apart from the agents' data."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, self.coordinator.budget_signal, self._handle_budget
            )
        )

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        """Write only when the availability changed; the figures come by signal."""
        if self.available != self._written_available:
            self._written_available = self.available
            self.async_write_ha_state()

    @callback
    def _handle_budget(self) -> None:
        value = self.entity_description.value_fn(
            self.coordinator.scheduler.budget_figures()
        )
        if value != self._attr_native_value:
            self._attr_native_value = value
            self.async_write_ha_state()
