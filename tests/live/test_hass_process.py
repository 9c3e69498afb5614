"""End to end: a real `hass` process, the fake Telzino API, and the REST API.

Onboarding, the config flow and the options flow go through Home Assistant's
REST API as the frontend uses it; nothing of the integration is mocked.
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
import re
import sys
import time

from homeassistant.const import __version__ as pinned_version
import pytest

from scripts.fake_telzino import (
    CLIENT_ID,
    CLIENT_SECRET,
    FRONT_DESK,
    SALES_LINE,
    FakeTelzino,
)
from scripts.live_ha import ROOT, free_port, run_home_assistant
from tests.live.logs import integration_errors

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    # One live worker runs these; the rate-limit test, which waits longest, has the other.
    pytest.mark.xdist_group("live"),
    pytest.mark.timeout(300),
]


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until `check` holds, polling once a second (bound it with a timeout)."""
    while not await check():  # noqa: ASYNC110  # polls another process
        await asyncio.sleep(1)


# The environments whose Home Assistant runs: the one the test plugin pins
# (this interpreter's), and the newest release alone (scripts/setup).
NEWEST = ROOT / ".venv-newest"
HOME_ASSISTANTS = {"pinned": Path(sys.executable), "newest": NEWEST / "bin" / "python"}


def release(version: str) -> tuple[int, ...]:
    """Return a release's numbers, for comparing versions such as 2026.11.0."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


@pytest.mark.parametrize("home_assistant", list(HOME_ASSISTANTS))
async def test_real_home_assistant(
    fake: FakeTelzino,
    fake_url: str,
    agents: list[str],
    tmp_path: Path,
    home_assistant: str,
) -> None:
    """Onboarding, setup and options over REST; a lost registration shows within a poll.

    On the Home Assistant the test plugin pins and on the newest release.
    Telzino's clock runs 60 s behind the host's: a refresh in progress keeps
    Registered on and fires no event meanwhile.
    """
    python = HOME_ASSISTANTS[home_assistant]
    assert python.exists(), f"{python} is missing: run scripts/setup"
    # The real Home Assistant runs on real time; the API's clock, which its
    # answers' Date headers show, a minute behind.
    fake.clock = lambda: time.time() - 60
    fake.date_from_clock = True
    config_dir = tmp_path / "config"
    async with run_home_assistant(config_dir, free_port(), python=str(python)) as hass:
        await hass.onboard()
        running = (await hass.get_json("/api/config"))["version"]
        if home_assistant == "newest":
            assert running == (NEWEST / ".homeassistant-version").read_text().strip()
            assert release(running) >= release(pinned_version)
        else:
            assert running == pinned_version
        entry_id = await hass.add_telzino(fake_url, CLIENT_ID, CLIENT_SECRET)
        await hass.set_scan_interval(entry_id, 30)  # reloads the entry

        registry = await hass.websocket_command({"type": "config/entity_registry/list"})
        polling_interval = next(
            item["entity_id"]
            for item in registry
            if item["unique_id"] == f"{entry_id}_polling_interval"
        )

        async def loaded() -> bool:
            # The options flow's reload runs after its answer: the states may
            # still be the old entry's. The reloaded entry's Polling interval
            # shows the new one, after its first round read every agent.
            states = await hass.states()
            return (
                states.get(polling_interval, {}).get("state") in ("30", "30.0")
                and states["binary_sensor.front_desk_registered"]["state"] == "on"
                and states["sensor.front_desk_registration_state"]["state"]
                == "registered"
                and states["binary_sensor.sales_line_registered"]["state"] == "on"
            )

        async with asyncio.timeout(30):
            await eventually(loaded)
        states = await hass.states()
        assert (
            states["sensor.front_desk_registration_state"]["attributes"][
                "friendly_name"
            ]
            == "Front desk Registration state"
        )

        sales_line_event = states["event.sales_line_registration"]["state"]
        # A refresh whose REGISTER goes now, stamped on the API's clock, read at
        # once (asked for): it holds 35 s from its REGISTER on that clock.
        fake.set_state(SALES_LINE, "REGISTERING_STATE", last_register_sent=fake.clock())
        await hass.websocket_command(
            {
                "type": "call_service",
                "domain": "homeassistant",
                "service": "update_entity",
                "service_data": {"entity_id": "binary_sensor.sales_line_registered"},
            }
        )

        async def refreshing() -> bool:
            states = await hass.states()
            return states["sensor.sales_line_registration_state"]["state"] == (
                "registering"
            )

        async with asyncio.timeout(20):
            await eventually(refreshing)
        states = await hass.states()
        assert states["binary_sensor.sales_line_registered"]["state"] == "on"
        fake.set_state(SALES_LINE, "REGISTERED_STATE")
        fake.set_state(FRONT_DESK, "WRONG_CREDENTIALS_STATE")

        async def lost_and_reported() -> bool:
            states = await hass.states()
            issues = await hass.websocket_command({"type": "repairs/list_issues"})
            return (
                states["binary_sensor.front_desk_registered"]["state"] == "off"
                and states["sensor.front_desk_registration_state"]["state"]
                == "wrong_credentials"
                and any(
                    issue["domain"] == "telzino"
                    and issue["issue_id"] == f"wrong_credentials_{FRONT_DESK}"
                    for issue in issues["issues"]
                )
            )

        # Within one poll of the 30 s interval (plus slack).
        async with asyncio.timeout(40):
            await eventually(lost_and_reported)
        states = await hass.states()
        assert states["binary_sensor.sales_line_registered"]["state"] == "on"
        assert states["event.sales_line_registration"]["state"] == sales_line_event
        exit_code = await hass.stop()

    assert exit_code == 0
    assert integration_errors(config_dir) == []
    log = (config_dir / "home-assistant.log").read_text()
    assert "custom_components/telzino" not in log  # no traceback through our code
