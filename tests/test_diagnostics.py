"""Diagnostics: useful for a bug report, with every secret removed."""

import json

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from scripts.fake_telzino import (
    CLIENT_ID,
    CLIENT_SECRET,
    SALES_LINE,
    STATUS,
    FakeTelzino,
)
from tests.common import make_entry, poll, setup_entry


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
) -> None:
    """Diagnostics hold settings, the last poll and errors, with secrets redacted."""
    entry = await setup_entry(hass, make_entry(fake_url, agents))
    fake.inject(STATUS, SALES_LINE, status=404)
    await poll(hass, freezer)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics == snapshot(exclude=lambda prop, path: prop == "api_url")
    dumped = json.dumps(diagnostics)
    for secret in (CLIENT_ID, CLIENT_SECRET, *fake.tokens):
        assert secret not in dumped
    assert diagnostics["agents"][SALES_LINE]["error"].startswith("TelzinoNotFoundError")


async def test_diagnostics_of_a_token_entry(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Diagnostics of a token entry."""
    token = fake.add_token("a-pasted-access-token")
    entry = await setup_entry(hass, make_entry(fake_url, agents, token=token))
    fake.inject(STATUS, status=500)
    await poll(hass, freezer)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics["entry"]["data"]["access_token"] == "**REDACTED**"
    assert "a-pasted-access-token" not in json.dumps(diagnostics)
    assert diagnostics["coordinator"]["last_update_success"] is False
    assert "HTTP 500" in diagnostics["coordinator"]["last_exception"]
