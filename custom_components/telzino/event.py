"""Event entity of a Telzino agent: fires when its registration changes."""

from typing import override

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import RegistrationState
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .entity import TelzinoEntity, async_add_agent_entities

PARALLEL_UPDATES = 0

EVENT_REGISTERED = "registered"
EVENT_LOST = "lost"
EVENT_CHANGED = "changed"

REGISTRATION_EVENT = EventEntityDescription(
    key="registration",
    translation_key="registration",
    event_types=[EVENT_REGISTERED, EVENT_LOST, EVENT_CHANGED],
)


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


class TelzinoRegistrationEvent(TelzinoEntity, EventEntity):
    """Fires `registered`, `lost` or `changed` on a state transition between polls."""

    _last_state: RegistrationState | None = None

    @override
    async def async_added_to_hass(self) -> None:
        """Remember the state at start: a transition needs a state before it."""
        await super().async_added_to_hass()
        if (status := self.status) is not None:
            self._last_state = status.state

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        status = self.status
        if status is None:
            # Unknown now: keep the last known state to compare the next one with.
            super()._handle_coordinator_update()
            return
        previous, self._last_state = self._last_state, status.state
        if previous is not None and previous is not status.state:
            if status.state is RegistrationState.REGISTERED:
                event_type = EVENT_REGISTERED
            elif previous is RegistrationState.REGISTERED:
                event_type = EVENT_LOST
            else:
                event_type = EVENT_CHANGED
            self._trigger_event(
                event_type,
                {
                    "previous_state": previous.value,
                    "state": status.state.value,
                    "message": status.error_message,
                },
            )
        super()._handle_coordinator_update()
