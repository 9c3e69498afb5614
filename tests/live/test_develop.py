"""scripts/develop: a local Home Assistant that stays up, restarts and looks clean.

Runs the same code as `scripts/develop` (scripts/develop.py) on free ports in
a temporary config directory.
"""

import asyncio
import json
from pathlib import Path
import re

import pytest

from scripts.develop import develop
from scripts.live_ha import LiveHomeAssistant, free_port

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    # One live worker runs these; the rate-limit test, which waits longest, has the other.
    pytest.mark.xdist_group("live"),
    pytest.mark.timeout(400),
]
FRONT_DESK_REGISTERED = "binary_sensor.front_desk_registered"


async def next_start(
    starts: asyncio.Queue[LiveHomeAssistant], running: asyncio.Task[int]
) -> LiveHomeAssistant:
    """Wait for Home Assistant's next start; fail at once if develop() ended."""
    waiting = asyncio.ensure_future(starts.get())
    async with asyncio.timeout(240):
        await asyncio.wait({waiting, running}, return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
        raise AssertionError(f"develop() ended with {running.result()}")
    return waiting.result()


async def registered(hass: LiveHomeAssistant) -> None:
    """Wait until the Telzino entities are loaded and Front desk is registered."""
    async with asyncio.timeout(60):
        while not await is_registered(hass):  # noqa: ASYNC110  # another process
            await asyncio.sleep(1)


async def is_registered(hass: LiveHomeAssistant) -> bool:
    """Tell whether Front desk's Registered sensor is on."""
    state = (await hass.states()).get(FRONT_DESK_REGISTERED, {})
    return bool(state.get("state") == "on")


async def test_restart_brings_home_assistant_back_on_the_same_port(
    tmp_path: Path, socket_enabled: None
) -> None:
    """A restart from the API: Home Assistant is back, same port, same entities.

    The HTTP settings are stored and confirmed from the first start (nothing
    pending, so no five-minute revert and no dialog), YAML `http:` is gone (no
    repair), and onboarding set up nothing that fails without internet access.
    """
    config_dir = tmp_path / "config"
    port = free_port()
    starts: asyncio.Queue[LiveHomeAssistant] = asyncio.Queue()
    running = asyncio.create_task(
        develop(port, free_port(), "127.0.0.1", config_dir, on_start=starts.put)
    )
    try:
        first = await next_start(starts, running)
        await registered(first)

        http = json.loads((config_dir / ".storage" / "http").read_text())["data"]
        assert http["pending"] is None
        assert http["yaml_migration_done"] is True
        assert http["stable"]["server_port"] == port
        assert http["stable"]["server_host"] == ["127.0.0.1"]
        issues = await first.websocket_command({"type": "repairs/list_issues"})
        assert [i for i in issues["issues"] if i["domain"] == "http"] == []
        entries = await first.websocket_command({"type": "config_entries/get"})
        domains = {entry["domain"] for entry in entries}
        assert "telzino" in domains
        assert not domains & {"google_translate", "met", "radio_browser"}

        async with first.session.post(
            f"{first.url}/api/services/homeassistant/restart", headers=first.headers
        ):
            pass
        second = await next_start(starts, running)
        assert second.url == first.url == f"http://127.0.0.1:{port}"
        await registered(second)
        assert not running.done()
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    log = (config_dir / "home-assistant.log").read_text()
    errors = [
        line
        for line in log.splitlines()
        if re.match(r"^\S+ \S+ (ERROR|CRITICAL)", line)
    ]
    assert errors == []
    assert "Pending HTTP config" not in log


async def test_a_new_run_follows_new_ports(
    tmp_path: Path, socket_enabled: None
) -> None:
    """A second run with another --port and --api-port serves and polls there."""
    config_dir = tmp_path / "config"
    for _ in range(2):
        port = free_port()
        started: asyncio.Queue[LiveHomeAssistant] = asyncio.Queue()
        running = asyncio.create_task(
            develop(port, free_port(), "127.0.0.1", config_dir, on_start=started.put)
        )
        try:
            hass = await next_start(started, running)
            assert hass.url == f"http://127.0.0.1:{port}"
            await registered(hass)
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
