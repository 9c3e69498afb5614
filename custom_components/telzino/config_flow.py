"""Config, reauth, reconfigure and options flows of the Telzino integration."""

from collections.abc import Iterable, Mapping
import hashlib
import re
from typing import Any, override

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from . import create_client
from .api import (
    DEFAULT_API_URL,
    Agent,
    TelzinoAuthenticationError,
    TelzinoClient,
    TelzinoConnectionError,
    TelzinoError,
    TelzinoForbiddenError,
    TelzinoInvalidAgentIdError,
    TelzinoInvalidResponseError,
    TelzinoInvalidUrlError,
    TelzinoNotFoundError,
    TelzinoRateLimitedError,
    TelzinoRequestError,
    validate_agent_id,
    validate_api_url,
)
from .const import (
    AUTH_CREDENTIALS,
    AUTH_TOKEN,
    CONF_ACCESS_TOKEN,
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_API_URL,
    CONF_AUTH_TYPE,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_SCAN_INTERVAL,
    CONF_WATCH_REFRESH,
    DASHBOARD_URL,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    LOGGER,
    MAX_SCAN_INTERVAL,
    MIN_SCAN_INTERVAL,
)

CONF_ADVANCED = "advanced"
CLIENT_DIGEST_PREFIX = "client_sha256_"
CONF_AGENT_IDS = "agent_ids"

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
TEXT = TextSelector()
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
ADVANCED = section(
    probatio.Schema({probatio.Required(CONF_API_URL, default=DEFAULT_API_URL): URL}),
    {"collapsed": True},
)
AUTH_SCHEMAS = {
    AUTH_CREDENTIALS: probatio.Schema(
        {
            probatio.Required(CONF_CLIENT_ID): TEXT,
            probatio.Required(CONF_CLIENT_SECRET): PASSWORD,
            probatio.Required(CONF_ADVANCED): ADVANCED,
        }
    ),
    AUTH_TOKEN: probatio.Schema(
        {
            probatio.Required(CONF_ACCESS_TOKEN): PASSWORD,
            probatio.Required(CONF_ADVANCED): ADVANCED,
        }
    ),
}
# Reauth and reconfigure take either kind of credentials, so that a user on a
# pasted token can switch to client credentials there.
UPDATE_CREDENTIALS_SCHEMA = probatio.Schema(
    {
        probatio.Optional(CONF_CLIENT_ID): TEXT,
        probatio.Optional(CONF_CLIENT_SECRET): PASSWORD,
        probatio.Optional(CONF_ACCESS_TOKEN): PASSWORD,
    }
)
AGENT_ID_SEPARATORS = re.compile(r"[\s,;]+")


class FormError(Exception):
    """What the user entered cannot be used; `key` is the error the form shows."""

    def __init__(self, key: str, placeholders: dict[str, str] | None = None) -> None:
        """Keep the translation key and its placeholders."""
        super().__init__(key)
        self.key = key
        self.placeholders = placeholders or {}


# The form error of each client error, most specific class first.
FORM_ERRORS: tuple[tuple[type[TelzinoError], str], ...] = (
    (TelzinoInvalidUrlError, "invalid_url"),
    (TelzinoAuthenticationError, "invalid_auth"),
    (TelzinoForbiddenError, "forbidden"),
    (TelzinoRateLimitedError, "rate_limited"),
    (TelzinoConnectionError, "cannot_connect"),
    (TelzinoInvalidResponseError, "cannot_connect"),
    # A 404 outside an agent's own path: most likely a wrong API URL.
    (TelzinoNotFoundError, "cannot_connect"),
    (TelzinoRequestError, "request_rejected"),
    (TelzinoError, "unknown"),
)


def _form_error(err: TelzinoError) -> FormError:
    """Return the form error for an error of the client."""
    return FormError(next(key for kind, key in FORM_ERRORS if isinstance(err, kind)))


def _auth_data(user_input: Mapping[str, Any], api_url: str) -> dict[str, str]:
    """Entry data from a form with either kind of credentials, URL normalized."""
    client_id = user_input.get(CONF_CLIENT_ID, "").strip()
    client_secret = user_input.get(CONF_CLIENT_SECRET, "").strip()
    access_token = user_input.get(CONF_ACCESS_TOKEN, "").strip()
    if client_id and client_secret:
        auth = {
            CONF_AUTH_TYPE: AUTH_CREDENTIALS,
            CONF_CLIENT_ID: client_id,
            CONF_CLIENT_SECRET: client_secret,
        }
    elif access_token:
        auth = {CONF_AUTH_TYPE: AUTH_TOKEN, CONF_ACCESS_TOKEN: access_token}
    else:
        raise FormError("missing_credentials")
    try:
        return {**auth, CONF_API_URL: validate_api_url(api_url)}
    except TelzinoInvalidUrlError as err:
        raise _form_error(err) from err


async def _async_connect(
    hass: HomeAssistant, data: dict[str, str]
) -> tuple[TelzinoClient, list[Agent] | None]:
    """Check the credentials; return a client and the agents (None: may not list)."""
    try:
        client = create_client(hass, data)
        await client.authenticate()
        try:
            return client, await client.get_agents()
        except TelzinoForbiddenError:
            return client, None
    except TelzinoError as err:
        raise _form_error(err) from err
    except Exception as err:
        LOGGER.exception("Unexpected error while checking Telzino credentials")
        raise FormError("unknown") from err


async def _async_account_id(
    client: TelzinoClient, agents: list[Agent] | None, agent_ids: Iterable[str]
) -> str | None:
    """Return the account's identity: the organization that owns its agents."""
    if agents is None:
        first = next(iter(agent_ids), None)
        if first is None:
            return None
        try:
            agents = [await client.get_agent(first)]
        except TelzinoError:
            return None
    organizations = {agent.organization_id for agent in agents if agent.organization_id}
    return min(organizations) if organizations else None


def _client_id_digest(data: Mapping[str, str]) -> str | None:
    """Identity of credentials whose organization cannot be read.

    A digest, so that the client ID itself never shows in the entry's unique ID.
    A pasted token has no stable identity: it changes every day.
    """
    if data[CONF_AUTH_TYPE] != AUTH_CREDENTIALS:
        return None
    digest = hashlib.sha256(data[CONF_CLIENT_ID].encode()).hexdigest()
    return f"{CLIENT_DIGEST_PREFIX}{digest}"


def _is_organization(unique_id: str | None) -> bool:
    return unique_id is not None and not unique_id.startswith(CLIENT_DIGEST_PREFIX)


def _watched_elsewhere(hass: HomeAssistant, entry_id: str | None) -> set[str]:
    """Agents that other Telzino entries watch."""
    return {
        agent_id
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.entry_id != entry_id
        for agent_id in entry.options.get(CONF_AGENTS, [])
    }


def _agent_selector(agents: Mapping[str, str], *, custom: bool) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=[
                SelectOptionDict(value=agent_id, label=name)
                for agent_id, name in sorted(
                    agents.items(), key=lambda item: item[1].casefold()
                )
            ],
            multiple=True,
            custom_value=custom,
        )
    )


class TelzinoConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a Telzino account and choose the agents to watch."""

    VERSION = 1
    # Set by the credentials step, which always comes before the agent steps.
    _client: TelzinoClient

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._data: dict[str, str] = {}
        self._agents: list[Agent] = []

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> TelzinoOptionsFlow:
        """Return the options flow."""
        return TelzinoOptionsFlow()

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Let the user pick how to authenticate."""
        return self.async_show_menu(
            step_id="user", menu_options=[AUTH_CREDENTIALS, AUTH_TOKEN]
        )

    async def async_step_credentials(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Authenticate with client credentials (renews its own token)."""
        return await self._async_step_auth(AUTH_CREDENTIALS, user_input)

    async def async_step_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Authenticate with a pasted access token (expires after 24 hours)."""
        return await self._async_step_auth(AUTH_TOKEN, user_input)

    async def _async_step_auth(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = _auth_data(user_input, user_input[CONF_ADVANCED][CONF_API_URL])
                self._client, agents = await _async_connect(self.hass, data)
            except FormError as err:
                errors["base"] = err.key
            else:
                self._data = data
                if agents:
                    await self._async_set_account(agents, [])
                elsewhere = _watched_elsewhere(self.hass, None)
                self._agents = [a for a in agents or [] if a.id not in elsewhere]
                if self._agents:
                    return await self.async_step_agents()
                return await self.async_step_agents_manual()
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                AUTH_SCHEMAS[step_id], user_input
            ),
            errors=errors,
            description_placeholders={"dashboard_url": DASHBOARD_URL},
        )

    async def async_step_agents(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick agents from the account's list, or all of them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            agents: list[str] = user_input.get(CONF_AGENTS, [])
            all_agents: bool = user_input.get(CONF_ALL_AGENTS, False)
            if agents or all_agents:
                return self._async_create_entry(
                    [] if all_agents else agents, all_agents=all_agents
                )
            errors["base"] = "no_agents_selected"
        schema = probatio.Schema(
            {
                probatio.Optional(CONF_AGENTS): _agent_selector(
                    {agent.id: agent.name for agent in self._agents}, custom=False
                ),
                probatio.Optional(CONF_ALL_AGENTS, default=False): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="agents",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_agents_manual(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Enter agent IDs by hand when the account's agents cannot be listed."""
        errors: dict[str, str] = {}
        placeholders = {"agent_id": "", "dashboard_url": DASHBOARD_URL}
        if user_input is not None:
            try:
                agent_ids = await self._async_check_agent_ids(
                    user_input[CONF_AGENT_IDS]
                )
            except FormError as err:
                errors[CONF_AGENT_IDS] = err.key
                placeholders.update(err.placeholders)
            else:
                await self._async_set_account(None, agent_ids)
                return self._async_create_entry(agent_ids, all_agents=False)
        return self.async_show_form(
            step_id="agents_manual",
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema(
                    {
                        probatio.Required(CONF_AGENT_IDS): TextSelector(
                            TextSelectorConfig(multiline=True)
                        )
                    }
                ),
                user_input,
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_check_agent_ids(self, text: str) -> list[str]:
        """Parse the IDs; check each one's format, then that it exists."""
        raw_ids = [part for part in AGENT_ID_SEPARATORS.split(text) if part]
        if not raw_ids:
            raise FormError("no_agents_selected")
        agent_ids: list[str] = []
        for raw_id in raw_ids:
            try:
                agent_ids.append(validate_agent_id(raw_id))
            except TelzinoInvalidAgentIdError as err:
                raise FormError("invalid_agent_id", {"agent_id": raw_id}) from err
        agent_ids = list(dict.fromkeys(agent_ids))
        elsewhere = _watched_elsewhere(self.hass, None)
        for agent_id in agent_ids:
            if agent_id in elsewhere:
                raise FormError("already_watched", {"agent_id": agent_id})
        results = await self._client.get_registration_statuses(agent_ids)
        for agent_id, result in results.items():
            if isinstance(result, TelzinoNotFoundError):
                raise FormError("agent_not_found", {"agent_id": agent_id})
            if isinstance(result, TelzinoError):
                raise _form_error(result) from result
        return agent_ids

    async def _async_set_account(
        self, agents: list[Agent] | None, agent_ids: list[str]
    ) -> None:
        """Give the flow the account's identity; abort if it is set up already."""
        account_id = await _async_account_id(
            self._client, agents, agent_ids
        ) or _client_id_digest(self._data)
        if account_id is not None:
            await self.async_set_unique_id(account_id)
            self._abort_if_unique_id_configured()

    @callback
    def _async_create_entry(
        self, agents: list[str], *, all_agents: bool
    ) -> ConfigFlowResult:
        return self.async_create_entry(
            title="Telzino",
            data=self._data,
            options={
                CONF_AGENTS: agents,
                CONF_ALL_AGENTS: all_agents,
                CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
                CONF_WATCH_REFRESH: True,
            },
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start re-authentication after the API rejected the credentials."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the secret(s) again."""
        entry = self._get_reauth_entry()
        return await self._async_step_update(
            "reauth_confirm", entry, user_input, UPDATE_CREDENTIALS_SCHEMA
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the credentials or the API URL of the same account."""
        entry = self._get_reconfigure_entry()
        schema = UPDATE_CREDENTIALS_SCHEMA.extend(
            {probatio.Required(CONF_API_URL, default=entry.data[CONF_API_URL]): URL}
        )
        return await self._async_step_update("reconfigure", entry, user_input, schema)

    async def _async_step_update(
        self,
        step_id: str,
        entry: ConfigEntry,
        user_input: dict[str, Any] | None,
        schema: probatio.Schema,
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            api_url = user_input.get(CONF_API_URL, entry.data[CONF_API_URL])
            try:
                data = _auth_data(user_input, api_url)
                client, agents = await _async_connect(self.hass, data)
            except FormError as err:
                errors["base"] = err.key
            else:
                account_id = await _async_account_id(
                    client, agents, entry.options.get(CONF_AGENTS, [])
                )
                # Only organizations tell accounts apart: a client ID digest
                # differs for every API client of the same account.
                if _is_organization(account_id) and _is_organization(entry.unique_id):
                    await self.async_set_unique_id(account_id)
                    self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self.async_update_reload_and_abort(entry, data=data)
        suggested = {CONF_CLIENT_ID: entry.data.get(CONF_CLIENT_ID, "")}
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or suggested
            ),
            errors=errors,
            description_placeholders={
                "dashboard_url": DASHBOARD_URL,
                "name": entry.title,
            },
        )


class TelzinoOptionsFlow(OptionsFlowWithReload):
    """Change which agents are watched and how often."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and save the options."""
        entry = self.config_entry
        errors: dict[str, str] = {}
        placeholders = {"agent_id": ""}
        if user_input is not None:
            try:
                agents = [
                    validate_agent_id(agent_id)
                    for agent_id in user_input.get(CONF_AGENTS, [])
                ]
            except TelzinoInvalidAgentIdError as err:
                errors[CONF_AGENTS] = "invalid_agent_id"
                placeholders["agent_id"] = err.agent_id
            else:
                all_agents = user_input[CONF_ALL_AGENTS]
                if agents or all_agents:
                    return self.async_create_entry(
                        data={
                            CONF_AGENTS: [] if all_agents else agents,
                            CONF_ALL_AGENTS: all_agents,
                            CONF_SCAN_INTERVAL: int(user_input[CONF_SCAN_INTERVAL]),
                            CONF_WATCH_REFRESH: user_input[CONF_WATCH_REFRESH],
                        }
                    )
                errors["base"] = "no_agents_selected"
        known = {agent_id: agent_id for agent_id in entry.options.get(CONF_AGENTS, [])}
        if entry.state is ConfigEntryState.LOADED:
            coordinator = entry.runtime_data
            known |= {
                agent_id: agent.name for agent_id, agent in coordinator.data.items()
            }
            known |= {
                agent_id: agent.name
                for agent_id, agent in coordinator.account_agents.items()
            }
        elsewhere = _watched_elsewhere(self.hass, entry.entry_id)
        schema = probatio.Schema(
            {
                probatio.Optional(CONF_AGENTS): _agent_selector(
                    {k: v for k, v in known.items() if k not in elsewhere}, custom=True
                ),
                probatio.Required(CONF_ALL_AGENTS): BooleanSelector(),
                probatio.Required(CONF_SCAN_INTERVAL): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_SCAN_INTERVAL,
                        max=MAX_SCAN_INTERVAL,
                        step=1,
                        unit_of_measurement="s",
                        mode=NumberSelectorMode.BOX,
                    )
                ),
                probatio.Optional(CONF_WATCH_REFRESH, default=True): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or {CONF_WATCH_REFRESH: True, **entry.options}
            ),
            errors=errors,
            description_placeholders=placeholders,
        )
