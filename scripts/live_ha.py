"""A real Home Assistant process with this integration, driven through its APIs.

Shared by `scripts/develop` (a local demo) and the end-to-end and browser tests:
it starts the fake Telzino API and `hass` with a config directory, completes
onboarding and adds the Telzino config entry through Home Assistant's REST API,
the way the frontend does it.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CONFIG_TEMPLATE = ROOT / "config" / "configuration.yaml"
INTEGRATION = ROOT / "custom_components" / "telzino"
# TELZINO_CHROMIUM names another Chromium-based browser (GitHub runners ship Chrome).
CHROMIUM = (
    os.environ.get("TELZINO_CHROMIUM")
    or shutil.which("chromium")
    or "/usr/bin/chromium"
)
# Headless as root on a machine without general internet access.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-gpu",
]
DEMO_USER = "demo"
DEMO_PASSWORD = "telzino-demo"  # noqa: S105  # a local demo account, printed to the user


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare_config_dir(config_dir: Path) -> None:
    """Copy the configuration and link the integration into a config directory."""
    config_dir.mkdir(parents=True, exist_ok=True)
    if config_dir.resolve() != CONFIG_TEMPLATE.parent.resolve():
        shutil.copy(CONFIG_TEMPLATE, config_dir / "configuration.yaml")
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "telzino"
    if not link.exists():
        link.symlink_to(INTEGRATION, target_is_directory=True)


@dataclass
class LiveHomeAssistant:
    """A running `hass` process and an authenticated session to it."""

    process: asyncio.subprocess.Process
    url: str
    session: aiohttp.ClientSession
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """Authorization for the REST API."""
        return {"Authorization": f"Bearer {self.token}"}

    async def wait_until_up(self) -> None:
        """Wait until the HTTP server answers (onboarding needs no token)."""
        async with asyncio.timeout(180):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"hass exited with {self.process.returncode}")
                try:
                    async with self.session.get(
                        f"{self.url}/api/onboarding"
                    ) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)

    async def onboard(self) -> None:
        """Create the owner account and finish onboarding, as the frontend does."""
        client_id = f"{self.url}/"
        async with self.session.post(
            f"{self.url}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Demo",
                "username": DEMO_USER,
                "password": DEMO_PASSWORD,
                "language": "en",
            },
        ) as response:
            response.raise_for_status()
            auth_code = (await response.json())["auth_code"]
        await self._exchange_code(auth_code)
        for step, body in (
            ("core_config", {}),
            ("analytics", {}),
            ("integration", {"client_id": client_id, "redirect_uri": client_id}),
        ):
            async with self.session.post(
                f"{self.url}/api/onboarding/{step}", json=body, headers=self.headers
            ) as response:
                response.raise_for_status()

    async def _exchange_code(self, code: str) -> None:
        """Trade an authorization code for the access token, as the frontend does."""
        async with self.session.post(
            f"{self.url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": f"{self.url}/",
            },
        ) as response:
            response.raise_for_status()
            self.token = (await response.json())["access_token"]

    async def is_onboarded(self) -> bool:
        """Whether the owner account exists already."""
        async with self.session.get(f"{self.url}/api/onboarding") as response:
            steps = await response.json()
        return all(step["done"] for step in steps)

    async def flow_step(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one config or options flow step and return its result."""
        async with self.session.post(
            f"{self.url}{path}", json=body, headers=self.headers
        ) as response:
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
            return result

    async def add_telzino(
        self, api_url: str, client_id: str, client_secret: str
    ) -> str:
        """Run the Telzino config flow, watching all agents; return the entry ID."""
        flows = "/api/config/config_entries/flow"
        result = await self.flow_step(flows, {"handler": "telzino"})
        flow = f"{flows}/{result['flow_id']}"
        result = await self.flow_step(flow, {"next_step_id": "credentials"})
        result = await self.flow_step(
            flow,
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "advanced": {"api_url": api_url},
            },
        )
        if result.get("step_id") != "agents":
            raise RuntimeError(f"unexpected config flow step: {result}")
        result = await self.flow_step(flow, {"all_agents": True})
        if result.get("type") != "create_entry":
            raise RuntimeError(f"config flow did not finish: {result}")
        entry_id: str = result["result"]["entry_id"]
        return entry_id

    async def set_scan_interval(self, entry_id: str, seconds: int) -> None:
        """Change the polling interval through the options flow."""
        flows = "/api/config/config_entries/options/flow"
        result = await self.flow_step(flows, {"handler": entry_id})
        await self.flow_step(
            f"{flows}/{result['flow_id']}",
            {"agents": [], "all_agents": True, "scan_interval": seconds},
        )

    async def states(self) -> dict[str, dict[str, Any]]:
        """All entity states by entity ID."""
        async with self.session.get(
            f"{self.url}/api/states", headers=self.headers
        ) as response:
            response.raise_for_status()
            return {state["entity_id"]: state for state in await response.json()}

    async def websocket_command(self, command: dict[str, Any]) -> Any:
        """Send one websocket command and return its result."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json())["type"] != "auth_ok":
                raise RuntimeError("websocket authentication failed")
            await ws.send_json({"id": 1, **command})
            message = await ws.receive_json()
            if not message.get("success"):
                raise RuntimeError(f"websocket command failed: {message}")
            return message["result"]

    async def stop(self) -> int:
        """Stop Home Assistant as a service manager would; return its exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(60):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0


@asynccontextmanager
async def run_home_assistant(
    config_dir: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    log_file: Path | None = None,
) -> AsyncIterator[LiveHomeAssistant]:
    """Start `hass` on host:port with `config_dir`; stop it on exit."""
    prepare_config_dir(config_dir)
    env = {**os.environ, "TELZINO_HA_PORT": str(port), "TELZINO_HA_HOST": host}
    log = (log_file or config_dir / "hass.out").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "homeassistant",
        "--config",
        str(config_dir),
        "--skip-pip",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    async with aiohttp.ClientSession() as session:
        hass = LiveHomeAssistant(process, f"http://127.0.0.1:{port}", session)
        try:
            await hass.wait_until_up()
            yield hass
        finally:
            await hass.stop()
            log.close()
