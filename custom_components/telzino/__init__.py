"""The Telzino integration: SIP registration status of Telzino AI phone agents."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import AccessToken, ClientCredentials, Credentials, TelzinoClient
from .const import (
    AUTH_TOKEN,
    CONF_ACCESS_TOKEN,
    CONF_API_URL,
    CONF_AUTH_TYPE,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    DOMAIN,
)
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]


def credentials_from(data: dict[str, str]) -> Credentials:
    """Return the client credentials stored in a config entry's data."""
    if data[CONF_AUTH_TYPE] == AUTH_TOKEN:
        return AccessToken(data[CONF_ACCESS_TOKEN])
    return ClientCredentials(data[CONF_CLIENT_ID], data[CONF_CLIENT_SECRET])


def create_client(hass: HomeAssistant, data: dict[str, str]) -> TelzinoClient:
    """Return a client for stored (or just entered) entry data."""
    return TelzinoClient(
        async_get_clientsession(hass),
        credentials_from(data),
        api_url=data[CONF_API_URL],
    )


async def async_setup_entry(hass: HomeAssistant, entry: TelzinoConfigEntry) -> bool:
    """Set up a Telzino account from a config entry."""
    coordinator = TelzinoCoordinator(hass, entry, create_client(hass, dict(entry.data)))
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TelzinoConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: TelzinoConfigEntry) -> None:
    """Drop the repair issues of a removed entry's agents."""
    registry = ir.async_get(hass)
    for (domain, issue_id), issue in list(registry.issues.items()):
        if domain == DOMAIN and (issue.data or {}).get("entry_id") == entry.entry_id:
            ir.async_delete_issue(hass, DOMAIN, issue_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TelzinoConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete the device of an agent that is no longer watched."""
    return not any(
        domain == DOMAIN and agent_id in entry.runtime_data.data
        for domain, agent_id in device.identifiers
    )
