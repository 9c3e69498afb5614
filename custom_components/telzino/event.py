"""Event entity of a Telzino agent: fires when its registration changes."""

from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.event import (
    EventEntity,
    EventEntityDescription,
    EventExtraStoredData,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .api import RegistrationState, RegistrationStatus
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .data import AgentData
from .entity import TelzinoEntity, async_add_agent_entities

PARALLEL_UPDATES = 0

EVENT_REGISTERED = "registered"
EVENT_LOST = "lost"
EVENT_DISABLED = "disabled"
EVENT_CHANGED = "changed"

REGISTRATION_EVENT = EventEntityDescription(
    key="registration",
    translation_key="registration",
    event_types=[EVENT_REGISTERED, EVENT_LOST, EVENT_DISABLED, EVENT_CHANGED],
)

# What an event compares: can the agent receive calls, and in which state.
type Reading = tuple[bool, RegistrationState]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TelzinoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the registration event entity of every watched agent."""

    def create(
        coordinator: TelzinoCoordinator, agent_id: str
    ) -> list[TelzinoRegistrationEvent]:
        return [TelzinoRegistrationEvent(coordinator, agent_id, REGISTRATION_EVENT)]

    async_add_agent_entities(entry, async_add_entities, create)


@dataclass
class RegistrationStoredData(EventExtraStoredData):
    """The last event, and the agent's last reading before Home Assistant stopped."""

    can_receive_calls: bool | None = None
    registration_state: str | None = None

    def reading(self) -> Reading | None:
        """Return the stored reading, if one was stored."""
        if self.can_receive_calls is None or self.registration_state is None:
            return None
        return self.can_receive_calls, RegistrationState(self.registration_state)

    @classmethod
    def reading_from(cls, restored: dict[str, Any]) -> Reading | None:
        """Return the reading of restored data, None if it holds none or junk."""
        try:
            stored = cls(
                restored.get("last_event_type"),
                restored.get("last_event_attributes"),
                restored.get("can_receive_calls"),
                restored.get("registration_state"),
            )
            return stored.reading()
        except ValueError:
            return None


def _event_type(previous: Reading, status: RegistrationStatus, agent: AgentData) -> str:
    """Name the transition from the previous reading to this one."""
    if agent.can_receive_calls:
        return EVENT_REGISTERED
    if previous[0]:
        # Disabling a registration in Telzino unregisters it: not a loss.
        if status.enabled is False or status.state is RegistrationState.UNREGISTERING:
            return EVENT_DISABLED
        return EVENT_LOST
    return EVENT_CHANGED


class TelzinoRegistrationEvent(TelzinoEntity, EventEntity):
    """Fires `registered`, `lost`, `disabled` or `changed` between readings.

    The last reading survives restarts, so a loss that began while Home
    Assistant was stopped is reported once, at the first reading after start.
    """

    _last: Reading | None = None

    @override
    async def async_added_to_hass(self) -> None:
        """Compare the first reading with the one stored before the stop."""
        await super().async_added_to_hass()
        if (restored := await self.async_get_last_extra_data()) is not None:
            self._last = RegistrationStoredData.reading_from(restored.as_dict())
        self._record_reading()

    @property
    @override
    def extra_restore_state_data(self) -> RegistrationStoredData:
        """Store the last event and the last reading."""
        event = super().extra_restore_state_data
        return RegistrationStoredData(
            event.last_event_type,
            event.last_event_attributes,
            self._last[0] if self._last else None,
            self._last[1].value if self._last else None,
        )

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self._record_reading()
        super()._handle_coordinator_update()

    def _record_reading(self) -> None:
        """Fire an event if the agent changed since the last reading."""
        agent = self.agent
        if agent is None or (status := agent.status) is None:
            # Unknown now: keep the last known reading to compare the next one with.
            return
        previous, self._last = self._last, (agent.can_receive_calls, status.state)
        if previous is None or previous == self._last:
            return
        if previous[0] == agent.can_receive_calls and agent.can_receive_calls:
            # A refresh between registered states changes nothing for calls.
            return
        # The history is recorded before entities hear of a change: these are
        # the values of the Lost since and Last outage sensors, for automations.
        history = self.coordinator.history.get(self.agent_id)
        self._trigger_event(
            _event_type(previous, status, agent),
            {
                "previous_state": previous[1].value,
                "state": status.state.value,
                "message": status.error_message,
                "lost_since": None
                if history.lost_since is None
                else dt_util.utc_from_timestamp(history.lost_since).isoformat(),
                "last_outage": None
                if history.last_outage is None
                else round(history.last_outage),
            },
        )
