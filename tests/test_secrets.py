"""No secret reaches a log line, an exception, diagnostics or an entity attribute.

Setup, polls, every fault of the matrix, diagnostics and reauth run with
distinctive secret values; then everything a user or a bug report could see is
searched for them.
"""

import json
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest

from custom_components.telzino.const import DOMAIN
from custom_components.telzino.diagnostics import async_get_config_entry_diagnostics
from scripts.fake_telzino import FakeTelzino
from tests.common import make_entry, poll, reauthenticate, setup_entry
from tests.faults import FAULTS, REAUTH

SECRET_CLIENT_ID = "cid-7f3a-DISTINCTIVE-CLIENT-ID"
SECRET_CLIENT_SECRET = "csec-91b2-DISTINCTIVE-CLIENT-SECRET"
PASTED_TOKEN = "tok-55aa-DISTINCTIVE-PASTED-TOKEN"
NEW_PASTED_TOKEN = "tok-66bb-DISTINCTIVE-NEW-TOKEN"


class Evidence:
    """Everything seen so far that must not hold a secret."""

    def __init__(self, hass: HomeAssistant, caplog: pytest.LogCaptureFixture) -> None:
        """Start with nothing seen."""
        self.hass = hass
        self.caplog = caplog
        self.texts: list[str] = []

    def collect(self) -> None:
        """Entity attributes, and the coordinators' last exceptions."""
        for state in self.hass.states.async_all():
            self.texts.append(json.dumps(state.as_dict(), default=str))
        for entry in self.hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                error = entry.runtime_data.last_exception
                self.texts.append(f"{error!s} {error!r}")
                for agent in entry.runtime_data.data.values():
                    self.texts.append(f"{agent.error!s} {agent.error!r}")

    def assert_clean(self, secrets: list[str]) -> None:
        """Fail if any secret is in what was seen or logged."""
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        logged = [formatter.format(record) for record in self.caplog.records]
        haystack = "\n".join(self.texts + logged)
        assert len(logged) > 50  # the log was really captured, debug lines included
        for secret in secrets:
            assert secret not in haystack


async def test_no_secret_leaks(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No secret reaches logs, exceptions, states or diagnostics, in any fault."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(
        "custom_components.telzino.api.client.DEFAULT_REQUEST_TIMEOUT", 0.5
    )
    evidence = Evidence(hass, caplog)
    credentials = {"client_id": SECRET_CLIENT_ID, "client_secret": SECRET_CLIENT_SECRET}
    fake.clients = {SECRET_CLIENT_ID: SECRET_CLIENT_SECRET}
    entry = make_entry(fake_url, agents)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, **credentials})
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    for fault in FAULTS.values():
        await fault.start(fake)
        await fault.poll(hass, freezer)
        evidence.collect()
        await fault.end(fake)
        if (
            fault.effect == REAUTH
            and hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        ):
            fake.clients = {SECRET_CLIENT_ID: SECRET_CLIENT_SECRET}
            await reauthenticate(hass, credentials)
        await poll(hass, freezer)
        evidence.collect()
    # What "Download diagnostics" writes (frozen time has outlived an HTTP login).
    evidence.texts.append(
        json.dumps(await async_get_config_entry_diagnostics(hass, entry), default=str)
    )

    # A pasted token: it expires, and the user pastes a new one.
    await hass.config_entries.async_remove(entry.entry_id)
    fake.add_token(PASTED_TOKEN)
    token_entry = await setup_entry(
        hass, make_entry(fake_url, agents, token=PASTED_TOKEN)
    )
    await poll(hass, freezer)
    evidence.collect()
    fake.expire_tokens()
    await poll(hass, freezer)
    evidence.collect()
    fake.add_token(NEW_PASTED_TOKEN)
    await reauthenticate(hass, {"access_token": NEW_PASTED_TOKEN})
    await poll(hass, freezer)
    evidence.collect()
    evidence.texts.append(
        json.dumps(
            await async_get_config_entry_diagnostics(hass, token_entry), default=str
        )
    )

    evidence.assert_clean([SECRET_CLIENT_ID, SECRET_CLIENT_SECRET, *fake.issued_tokens])
    assert PASTED_TOKEN in fake.issued_tokens
