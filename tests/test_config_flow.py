"""Config, reauth, reconfigure and options flows, against the fake API over loopback."""

import hashlib
import logging
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.telzino.const import (
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_SCAN_INTERVAL,
    CONF_WATCH_REFRESH,
    DOMAIN,
)
from scripts.fake_telzino import (
    AGENT,
    AGENTS,
    CLIENT_ID,
    CLIENT_SECRET,
    FRONT_DESK,
    ORGANIZATION_ID,
    SALES_LINE,
    STATUS,
    TOKEN,
    FakeTelzino,
)
from tests.common import make_entry, setup_entry

UNKNOWN_AGENT = "11111111-2222-4333-8444-555555555555"


def credentials_input(url: str, **overrides: str) -> dict[str, Any]:
    """Return the credentials form as a user fills it in."""
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "advanced": {"api_url": url},
        **overrides,
    }


async def start(hass: HomeAssistant, method: str) -> dict[str, Any]:
    """Open the flow and pick an authentication method from the menu."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["credentials", "token"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": method}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == method
    return result


async def test_full_flow_with_client_credentials(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """The whole flow over real HTTP, then a first poll: no mocks of the client."""
    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "agents"
    options = result["data_schema"].schema[CONF_AGENTS].config["options"]
    assert options == [
        {"value": FRONT_DESK, "label": "Front desk"},
        {"value": SALES_LINE, "label": "Sales line"},
    ]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENTS: [SALES_LINE], CONF_ALL_AGENTS: False}
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == ORGANIZATION_ID
    assert entry.data == {
        "auth_type": "credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "api_url": fake_url,
    }
    assert entry.options == {
        CONF_AGENTS: [SALES_LINE],
        CONF_ALL_AGENTS: False,
        CONF_SCAN_INTERVAL: 60,
        CONF_WATCH_REFRESH: True,
    }
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("binary_sensor.sales_line_registered").state == "on"
    assert hass.states.get("binary_sensor.front_desk_registered") is None


async def test_token_flow_watching_all_agents(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Token flow watching all agents."""
    token = fake.add_token()
    result = await start(hass, "token")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": token, "advanced": {"api_url": fake_url}}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ALL_AGENTS: True}
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "auth_type": "token",
        "access_token": token,
        "api_url": fake_url,
    }
    assert result["options"][CONF_ALL_AGENTS] is True
    assert result["options"][CONF_AGENTS] == []
    assert hass.states.get("binary_sensor.front_desk_registered").state == "on"
    assert fake.stats.requests[TOKEN] == 0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_auth"),
        ({"client_id": "   "}, "missing_credentials"),
        ({"advanced": {"api_url": "http://api.example.com"}}, "invalid_url"),
        ({"advanced": {"api_url": "not a url"}}, "invalid_url"),
    ],
)
async def test_credential_errors_can_be_corrected(
    hass: HomeAssistant,
    fake_url: str,
    agents: list[str],
    change: dict[str, Any],
    error: str,
) -> None:
    """Credential errors can be corrected."""
    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url, **change)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    assert result["step_id"] == "agents"


@pytest.mark.parametrize(
    ("endpoint", "fault", "error"),
    [
        (TOKEN, {"status": 503}, "cannot_connect"),
        (TOKEN, {"drop": "close"}, "cannot_connect"),
        (TOKEN, {"status": 429, "retry_after": "30"}, "rate_limited"),
        (AGENTS, {"status": 200, "body": "<html>"}, "cannot_connect"),
        (AGENTS, {"status": 401}, "invalid_auth"),
    ],
)
async def test_api_errors_can_be_retried(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    endpoint: str,
    fault: dict[str, Any],
    error: str,
) -> None:
    """Api errors can be retried."""
    result = await start(hass, "credentials")
    fake.inject(endpoint, **fault)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    assert result["errors"] == {"base": error}

    fake.clear_faults()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    assert result["step_id"] == "agents"


async def test_unexpected_error_is_unknown(
    hass: HomeAssistant,
    fake_url: str,
    agents: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug of ours shows "unknown" and logs its traceback."""
    result = await start(hass, "credentials")
    with patch(
        "custom_components.telzino.api.TelzinoClient.authenticate",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], credentials_input(fake_url)
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking Telzino credentials" in caplog.text
    assert "RuntimeError: boom" in caplog.text


async def test_wrong_pasted_token(
    hass: HomeAssistant, fake_url: str, agents: list[str]
) -> None:
    """A pasted token the API rejects is shown as invalid_auth."""
    result = await start(hass, "token")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": "bad", "advanced": {"api_url": fake_url}}
    )
    assert result["errors"] == {"base": "invalid_auth"}


async def test_at_least_one_agent(
    hass: HomeAssistant, fake_url: str, agents: list[str]
) -> None:
    """Choosing no agent (and not all) is refused until one is chosen."""
    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENTS: [], CONF_ALL_AGENTS: False}
    )
    assert result["errors"] == {"base": "no_agents_selected"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENTS: [FRONT_DESK], CONF_ALL_AGENTS: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_same_account_twice_is_refused(
    hass: HomeAssistant, fake_url: str, agents: list[str]
) -> None:
    """Same account twice is refused."""
    await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def manual_step(hass: HomeAssistant, fake: FakeTelzino, url: str) -> str:
    """Reach the manual agent step with credentials that may not list agents."""
    fake.inject(AGENTS, status=403)
    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(url)
    )
    assert result["step_id"] == "agents_manual"
    return result["flow_id"]


async def test_manual_agent_ids_when_listing_is_forbidden(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Manual agent ids when listing is forbidden."""
    flow_id = await manual_step(hass, fake, fake_url)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": f"{FRONT_DESK.upper()},\n {SALES_LINE} {FRONT_DESK}"}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_AGENTS] == [FRONT_DESK, SALES_LINE]
    # The account is identified through the first agent.
    assert result["result"].unique_id == ORGANIZATION_ID


@pytest.mark.parametrize(
    ("text", "error", "agent_id"),
    [
        (" , ", "no_agents_selected", ""),
        (f"{FRONT_DESK}, not-an-id", "invalid_agent_id", "not-an-id"),
        (f"{FRONT_DESK} {UNKNOWN_AGENT}", "agent_not_found", UNKNOWN_AGENT),
    ],
)
async def test_manual_agent_ids_are_checked(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    text: str,
    error: str,
    agent_id: str,
) -> None:
    """Manual agent ids are checked."""
    flow_id = await manual_step(hass, fake, fake_url)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": text}
    )
    assert result["errors"] == {"agent_ids": error}
    assert result["description_placeholders"]["agent_id"] == agent_id
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": FRONT_DESK}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, "cannot_connect"),
        (403, "forbidden"),
        (400, "request_rejected"),
        (429, "rate_limited"),
    ],
)
async def test_manual_agent_status_errors(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    error: str,
) -> None:
    """An API error while checking an agent is named on the form, not logged."""
    flow_id = await manual_step(hass, fake, fake_url)
    fake.inject(STATUS, status=status)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": FRONT_DESK}
    )
    assert result["errors"] == {"agent_ids": error}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "NoneType: None" not in caplog.text


async def test_manual_without_organization_is_identified_by_a_client_digest(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Credentials that can read no agent: the unique ID is a digest of the client.

    The same client cannot be set up twice, and its ID never shows.
    """
    flow_id = await manual_step(hass, fake, fake_url)
    fake.inject(AGENT, status=403)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": FRONT_DESK}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    unique_id = result["result"].unique_id
    assert (
        unique_id == "client_sha256_" + hashlib.sha256(CLIENT_ID.encode()).hexdigest()
    )
    assert CLIENT_ID not in unique_id

    flow_id = await manual_step(hass, fake, fake_url)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": SALES_LINE}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_pasted_token_without_organization_has_no_unique_id(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """A pasted token changes daily and names no account: no unique ID to give."""
    fake.inject(AGENTS, status=403)
    fake.inject(AGENT, status=403)
    result = await start(hass, "token")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"access_token": fake.add_token(), "advanced": {"api_url": fake_url}},
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"agent_ids": FRONT_DESK}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id is None


async def test_empty_account_goes_to_manual(hass: HomeAssistant, fake_url: str) -> None:
    """Empty account goes to manual."""
    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    assert result["step_id"] == "agents_manual"


async def test_agents_watched_elsewhere_are_not_offered(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Agents watched elsewhere are not offered."""
    other = make_entry(fake_url, [FRONT_DESK])
    other.add_to_hass(hass)
    hass.config_entries.async_update_entry(other, unique_id="another-account")

    result = await start(hass, "credentials")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], credentials_input(fake_url)
    )
    options = result["data_schema"].schema[CONF_AGENTS].config["options"]
    assert [option["value"] for option in options] == [SALES_LINE]

    # Typed by hand, it is refused too.
    flow_id = await manual_step(hass, fake, fake_url)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"agent_ids": FRONT_DESK}
    )
    assert result["errors"] == {"agent_ids": "already_watched"}


# Reauth ------------------------------------------------------------------------


async def test_reauth_with_new_secret(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reauthentication with a new secret updates the entry and reloads it."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    fake.clients = {CLIENT_ID: "new-secret"}
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID}
    )
    assert result["errors"] == {"base": "missing_credentials"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID, "client_secret": "new-secret"}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data["client_secret"] == "new-secret"
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_switches_a_token_entry_to_credentials(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reauth switches a token entry to credentials."""
    entry = await setup_entry(
        hass, make_entry(fake_url, agents, token=fake.add_token())
    )
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"
    assert entry.data == {
        "auth_type": "credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "api_url": fake_url,
    }


async def test_reauth_with_a_new_token(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reauth with a new token."""
    entry = await setup_entry(
        hass, make_entry(fake_url, agents, token=fake.add_token())
    )
    new_token = fake.add_token()
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": new_token}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"
    assert entry.data["access_token"] == new_token


async def test_reauth_refuses_another_account(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reauthentication with another organization's credentials is refused."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    for agent in fake.agents.values():
        agent.organization_id = "99999999-0000-4000-8000-000000000009"
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert entry.data["client_secret"] == CLIENT_SECRET


async def test_reauth_checks_the_account_through_an_agent_when_listing_is_forbidden(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reauth checks the account through an agent when listing is forbidden."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    fake.inject(AGENTS, status=403)
    fake.agents[FRONT_DESK].organization_id = "99999999-0000-4000-8000-000000000009"
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert result["reason"] == "wrong_account"


# Reconfigure --------------------------------------------------------------------


async def test_reconfigure_api_url_and_credentials(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reconfigure api url and credentials."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"access_token": "x", "api_url": "http://telzino.example.com"},
    )
    assert result["errors"] == {"base": "invalid_url"}

    token = fake.add_token()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": token, "api_url": f" {fake_url}/ "}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {
        "auth_type": "token",
        "access_token": token,
        "api_url": fake_url,
    }
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_refuses_another_account(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Reconfiguring to another organization's credentials is refused."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    for agent in fake.agents.values():
        agent.organization_id = "99999999-0000-4000-8000-000000000009"
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "api_url": fake_url},
    )
    assert result["reason"] == "wrong_account"


# Options ------------------------------------------------------------------------


async def test_options_change_agents_and_interval(
    hass: HomeAssistant,
    fake: FakeTelzino,
    init_integration: MockConfigEntry,
) -> None:
    """Options change agents and interval."""
    night = fake.add_agent("Night line")
    # Names come from the coordinator's last list pass, not a new request.
    fake.reset_stats()
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert fake.stats.requests == {}
    options = result["data_schema"].schema[CONF_AGENTS].config["options"]
    assert [option["label"] for option in options] == ["Front desk", "Sales line"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_AGENTS: [FRONT_DESK, night.id],
            CONF_ALL_AGENTS: False,
            CONF_SCAN_INTERVAL: 120.0,
            CONF_WATCH_REFRESH: False,
        },
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert init_integration.options == {
        CONF_AGENTS: [FRONT_DESK, night.id],
        CONF_ALL_AGENTS: False,
        CONF_SCAN_INTERVAL: 120,
        CONF_WATCH_REFRESH: False,
    }
    # Reloaded with the new options.
    assert hass.states.get("binary_sensor.night_line_registered").state == "on"
    assert init_integration.runtime_data.update_interval.total_seconds() == 120
    assert init_integration.runtime_data.watch is None


async def test_options_errors(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Options refuse invalid agent IDs and an empty selection."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_AGENTS: [], CONF_ALL_AGENTS: False, CONF_SCAN_INTERVAL: 60},
    )
    assert result["errors"] == {"base": "no_agents_selected"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_AGENTS: ["typo"], CONF_ALL_AGENTS: False, CONF_SCAN_INTERVAL: 60},
    )
    assert result["errors"] == {CONF_AGENTS: "invalid_agent_id"}
    assert result["description_placeholders"] == {"agent_id": "typo"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_AGENTS: [FRONT_DESK], CONF_ALL_AGENTS: True, CONF_SCAN_INTERVAL: 30},
    )
    await hass.async_block_till_done()
    assert init_integration.options == {
        CONF_AGENTS: [],
        CONF_ALL_AGENTS: True,
        CONF_SCAN_INTERVAL: 30,
        CONF_WATCH_REFRESH: True,
    }


async def test_options_of_an_entry_that_is_not_loaded(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Options of an entry that is not loaded."""
    fake.inject(STATUS, status=503)
    entry = await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    assert entry.state is ConfigEntryState.SETUP_RETRY
    result = await hass.config_entries.options.async_init(entry.entry_id)
    options = result["data_schema"].schema[CONF_AGENTS].config["options"]
    assert options == [{"value": FRONT_DESK, "label": FRONT_DESK}]


async def test_reauth_of_an_entry_without_account_identity(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Watching all agents with credentials that may not list them: no check possible."""
    entry = make_entry(fake_url, agents, all_agents=True)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, unique_id=None)
    fake.inject(AGENTS, status=403)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert result["reason"] == "reauth_successful"
