"""The Telzino integration: SIP registration status of Telzino AI phone agents."""

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util

from .api import AccessToken, ClientCredentials, Credentials, TelzinoClient
from .const import (
    AUTH_TOKEN,
    CONF_ACCESS_TOKEN,
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_API_URL,
    CONF_AUTH_TYPE,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    DOMAIN,
    UNIQUE_ID_SUFFIX_MIGRATION,
)
from .coordinator import TelzinoConfigEntry, TelzinoCoordinator
from .history import TelzinoHistory
from .store import AccountStore

# Set up in this order, one after the other: Home Assistant adds at most
# 10,000 enabled entities per config entry, fewer than the sensors of a
# thousand agents, and the platforms that carry the loss signal come first.
PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]


def credentials_from(data: dict[str, str]) -> Credentials:
    """Return the client credentials stored in a config entry's data."""
    if data[CONF_AUTH_TYPE] == AUTH_TOKEN:
        return AccessToken(data[CONF_ACCESS_TOKEN])
    return ClientCredentials(data[CONF_CLIENT_ID], data[CONF_CLIENT_SECRET])


def create_client(hass: HomeAssistant, data: dict[str, str]) -> TelzinoClient:
    """Return a client for stored (or just entered) entry data."""
    return TelzinoClient(
        credentials_from(data),
        session=async_get_clientsession(hass),
        api_url=data[CONF_API_URL],
        # Home Assistant's clock, which its timers (and the tests) follow.
        clock=lambda: dt_util.utcnow().timestamp(),
    )


async def async_setup_entry(hass: HomeAssistant, entry: TelzinoConfigEntry) -> bool:
    """Set up a Telzino account from a config entry."""

    @callback
    def migrate_unique_id(entity_entry: er.RegistryEntry) -> dict[str, Any] | None:
        agent_id, _, key = entity_entry.unique_id.partition("_")
        if (new_key := UNIQUE_ID_SUFFIX_MIGRATION.get(key)) is None:
            return None
        return {"new_unique_id": f"{agent_id}_{new_key}"}

    # Renamed entity keys keep their entity IDs and history.
    await er.async_migrate_entries(hass, entry.entry_id, migrate_unique_id)

    coordinator = TelzinoCoordinator(hass, entry, create_client(hass, dict(entry.data)))
    # Before the first poll, so that a loss that outlasted a restart goes on,
    # and the agents and budget known before are read at the pace learned.
    await coordinator.history.async_load()
    await coordinator.async_restore()
    await coordinator.async_config_entry_first_refresh()
    entry.async_on_unload(coordinator.history.async_start())
    entry.runtime_data = coordinator
    for platform in PLATFORMS:
        await hass.config_entries.async_forward_entry_setups(entry, [platform])
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TelzinoConfigEntry) -> bool:
    """Unload a config entry; its history and account state are saved first."""
    await entry.runtime_data.history.async_unload()
    await entry.runtime_data.async_save()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: TelzinoConfigEntry) -> None:
    """Drop the repair issues and the stored history and state of a removed entry."""
    registry = ir.async_get(hass)
    for (domain, issue_id), issue in list(registry.issues.items()):
        if domain == DOMAIN and (issue.data or {}).get("entry_id") == entry.entry_id:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
    await TelzinoHistory(hass, entry.entry_id).async_remove()
    await AccountStore(hass, entry.entry_id).async_remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TelzinoConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete the device of an agent that is no longer watched.

    Its history is gone already: the first poll without the agent dropped it.

    Decided from the options, which exist whether or not the entry is loaded;
    with all agents watched only a loaded entry knows the account's agents, and
    a device deleted while it is not loaded comes back if its agent still exists.
    """
    if (DOMAIN, entry.entry_id) in device.identifiers:
        return False  # the account's device lives as long as the entry
    if entry.options.get(CONF_ALL_AGENTS, False):
        watched: set[str] = (
            set(entry.runtime_data.data)
            if entry.state is ConfigEntryState.LOADED
            else set()
        )
    else:
        watched = set(entry.options.get(CONF_AGENTS, []))
    return not any(
        domain == DOMAIN and agent_id in watched
        for domain, agent_id in device.identifiers
    )
