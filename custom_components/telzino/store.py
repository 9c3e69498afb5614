"""What an entry keeps across restarts and reloads, besides the outage history.

The account's agents (the watched ones of *Watch all agents*, and the names)
and the request budget learned from the API: a reload or restart that meets
a refused agent list or a rate limit still reads the agents it knew, at the
pace it had learned.
"""

from collections.abc import Callable
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .api import Agent, TelzinoInvalidResponseError
from .const import DOMAIN, LOGGER

STORAGE_VERSION: Final = 1
# Written this long after a change (the agent list hourly, the budget at a 429).
SAVE_DELAY: Final = 10


def storage_key(entry_id: str) -> str:
    """Return the storage key of one entry's account state."""
    return f"{DOMAIN}.account.{entry_id}"


class AccountStore:
    """The stored agents and learned budget of one entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is read until async_load."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, storage_key(entry_id)
        )

    async def async_load(self) -> tuple[list[Agent], dict[str, Any]]:
        """Return the stored agents and budget; a bad file gives none, with a warning."""
        try:
            stored = await self._store.async_load() or {}
            agents = [Agent.from_api(agent) for agent in stored.get("agents", [])]
        except (TelzinoInvalidResponseError, AttributeError, TypeError) as err:
            LOGGER.warning("Starting without the stored agents and budget: %s", err)
            return [], {}
        budget = stored.get("budget")
        return agents, budget if isinstance(budget, dict) else {}

    def async_save_later(self, data: Callable[[], dict[str, Any]]) -> None:
        """Write what `data` returns a little later (changes in between ride along)."""
        self._store.async_delay_save(data, SAVE_DELAY)

    async def async_save(self, data: dict[str, Any]) -> None:
        """Write now (the entry unloads)."""
        await self._store.async_save(data)

    async def async_remove(self) -> None:
        """Delete the stored file (the entry was removed)."""
        await self._store.async_remove()


def agents_to_store(agents: list[Agent]) -> list[dict[str, Any]]:
    """Return the agents as the API lists them, for `Agent.from_api` to read back."""
    return [
        {"id": agent.id, "name": agent.name, "organization_id": agent.organization_id}
        for agent in agents
    ]
