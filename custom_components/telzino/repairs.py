"""Repair flow: stop watching an agent that no longer exists."""

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_AGENTS, DOMAIN


class AgentNotFoundRepairFlow(RepairsFlow):
    """Remove a deleted agent from the watched agents, and its device."""

    def __init__(self, entry_id: str, agent_id: str) -> None:
        """Remember which entry and agent the issue is about."""
        self._entry_id = entry_id
        self._agent_id = agent_id

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Stop watching the agent once the user confirms."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                description_placeholders={"agent_id": self._agent_id},
            )
        self.hass.config_entries.async_update_entry(
            entry,
            options={
                **entry.options,
                CONF_AGENTS: [
                    agent_id
                    for agent_id in entry.options.get(CONF_AGENTS, [])
                    if agent_id != self._agent_id
                ],
            },
        )
        registry = dr.async_get(self.hass)
        if device := registry.async_get_device_by_identifier(
            (DOMAIN, self._agent_id), entry.entry_id
        ):
            registry.async_remove_device(device.id)
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the flow that fixes an issue of this integration."""
    # Only agent_not_found issues are fixable; they always carry this data.
    issue_data = data or {}
    return AgentNotFoundRepairFlow(
        str(issue_data["entry_id"]), str(issue_data["agent_id"])
    )
