"""Base entity of the Telzino integration: one device per agent."""

from collections.abc import Callable, Iterable
from typing import override

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import RegistrationStatus
from .const import DASHBOARD_URL, DOMAIN, MANUFACTURER
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .data import AgentData


class TelzinoEntity(CoordinatorEntity[TelzinoCoordinator]):
    """An entity of one agent, fed by the account's coordinator."""

    _attr_has_entity_name = True
    # What the last written state was computed from.
    _written: tuple[bool, AgentData | None] | None = None

    def __init__(
        self,
        coordinator: TelzinoCoordinator,
        agent_id: str,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the agent's device."""
        super().__init__(coordinator)
        self.agent_id = agent_id
        self.entity_description = description
        self._attr_unique_id = f"{agent_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            entry_type=DeviceEntryType.SERVICE,
            identifiers={(DOMAIN, agent_id)},
            name=coordinator.data[agent_id].name,
            manufacturer=MANUFACTURER,
            model="AI phone agent",
            configuration_url=DASHBOARD_URL,
        )

    @override
    async def async_added_to_hass(self) -> None:
        """Remember what the first state was written from."""
        await super().async_added_to_hass()
        self._written = (self.coordinator.last_update_success, self.agent)

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        """Write the state only when this agent's data or availability changed.

        The coordinator calls every entity when any agent changed; the entities
        of the other agents have nothing new to write.
        """
        written = (self.coordinator.last_update_success, self.agent)
        if written == self._written:
            return
        self._written = written
        super()._handle_coordinator_update()

    @property
    def agent(self) -> AgentData | None:
        """Return the agent's data from the last poll, if it is still watched."""
        return self.coordinator.data.get(self.agent_id)

    @property
    def status(self) -> RegistrationStatus | None:
        """Return the agent's registration status, None when it could not be read."""
        agent = self.agent
        return agent.status if agent else None

    @property
    @override
    def available(self) -> bool:
        """Unavailable, never stale, when this agent's status cannot be read.

        An agent not read yet (the first round ran out of budget) is available
        with unknown values until its first reading.
        """
        agent = self.agent
        return super().available and agent is not None and agent.error is None


def async_add_agent_entities(
    entry: TelzinoConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    create: Callable[[TelzinoCoordinator, str], Iterable[Entity]],
) -> None:
    """Add entities for every agent, and for agents that appear later."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    @callback
    def add_new_agents() -> None:
        current = set(coordinator.data)
        # Forget removed agents so that one that comes back gets entities again.
        known.intersection_update(current)
        new = [agent_id for agent_id in coordinator.data if agent_id not in known]
        if not new:
            return
        known.update(new)
        async_add_entities(
            entity for agent_id in new for entity in create(coordinator, agent_id)
        )

    add_new_agents()
    entry.async_on_unload(coordinator.async_add_listener(add_new_agents))
