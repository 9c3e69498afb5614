"""A real Home Assistant process with this integration, driven through its APIs.

Shared by `scripts/develop` (a local demo) and the end-to-end and browser tests:
it prepares a config directory, starts `hass` with it, completes onboarding and
adds the Telzino config entry through Home Assistant's REST API, the way the
frontend does it.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
from typing import Any

import aiohttp
from homeassistant.components import onboarding
from homeassistant.components.http import config as http_config
from homeassistant.components.onboarding.const import STEP_CORE_CONFIG
from homeassistant.config_entries import STORAGE_KEY as CONFIG_ENTRIES_KEY

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


class HomeAssistantExitedError(RuntimeError):
    """Home Assistant ended before it was up."""

    def __init__(self, returncode: int) -> None:
        """Keep the exit code."""
        super().__init__(f"hass exited with {returncode}")
        self.returncode = returncode


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare_config_dir(config_dir: Path, *, host: str, port: int) -> None:
    """Get a config directory ready for a start on host:port.

    Copies the configuration, links the integration, and stores the HTTP
    settings Home Assistant keeps since 2026.10 (YAML `http:` would be a
    deprecated, five-minute trial that reverts and restarts).
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    if config_dir.resolve() != CONFIG_TEMPLATE.parent.resolve():
        shutil.copy(CONFIG_TEMPLATE, config_dir / "configuration.yaml")
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "telzino"
    if not link.exists():
        link.symlink_to(INTEGRATION, target_is_directory=True)
    write_http_settings(config_dir, host=host, port=port)
    skip_onboarding_integrations(config_dir)


def _storage(config_dir: Path, key: str) -> Path:
    storage = config_dir / ".storage"
    storage.mkdir(exist_ok=True)
    return storage / key


def write_http_settings(config_dir: Path, *, host: str, port: int) -> None:
    """Store host and port as the confirmed (stable) HTTP settings, every start.

    Nothing is pending, so Home Assistant shows no confirmation dialog and
    never reverts; the YAML migration is marked done, so no repair either.
    """
    settings = {
        **http_config.HTTP_STORAGE_SCHEMA({"server_host": [host], "server_port": port}),
        http_config.HTTP_CONFIG_CREATED_AT: datetime.now(UTC).isoformat(),
        http_config.HTTP_CONFIG_ERROR: None,
        http_config.HTTP_CONFIG_ERROR_MESSAGE: None,
    }
    stored = {
        "version": http_config.STORAGE_VERSION,
        "minor_version": http_config.STORAGE_MINOR_VERSION,
        "key": http_config.STORAGE_KEY,
        "data": {
            http_config.KEY_STABLE: settings,
            http_config.KEY_PENDING: None,
            http_config.KEY_YAML_MIGRATION_DONE: True,
        },
    }
    _storage(config_dir, http_config.STORAGE_KEY).write_text(json.dumps(stored))


def skip_onboarding_integrations(config_dir: Path) -> None:
    """Mark onboarding's core configuration step done before the first start.

    The core configuration comes from configuration.yaml. Finishing that step
    through the API would also set up Google Translate, Met and Radio Browser,
    which fail without internet access and clutter the demo with errors.
    """
    path = _storage(config_dir, onboarding.STORAGE_KEY)
    if path.exists():
        return
    stored = {
        "version": onboarding.STORAGE_VERSION,
        "minor_version": 1,
        "key": onboarding.STORAGE_KEY,
        "data": {"done": [STEP_CORE_CONFIG]},
    }
    path.write_text(json.dumps(stored))


def point_telzino_entries_at(config_dir: Path, api_url: str) -> None:
    """Let every Telzino entry use this API URL (before Home Assistant starts).

    A new run of scripts/develop may serve the fake API on another port.
    """
    path = config_dir / ".storage" / CONFIG_ENTRIES_KEY
    if not path.exists():
        return
    stored = json.loads(path.read_text())
    for entry in stored["data"]["entries"]:
        if entry["domain"] == "telzino":
            entry["data"]["api_url"] = api_url
    path.write_text(json.dumps(stored))


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
        """Wait until the HTTP server answers (400 before onboarding, then 200)."""
        async with asyncio.timeout(180):
            while True:
                if self.process.returncode is not None:
                    raise HomeAssistantExitedError(self.process.returncode)
                try:
                    async with self.session.get(
                        f"{self.url}/auth/providers"
                    ) as response:
                        if response.status < 500:
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
        # core_config is done already: see skip_onboarding_integrations().
        for step, body in (
            ("analytics", {}),
            ("integration", {"client_id": client_id, "redirect_uri": client_id}),
        ):
            async with self.session.post(
                f"{self.url}/api/onboarding/{step}", json=body, headers=self.headers
            ) as response:
                response.raise_for_status()

    async def log_in(self) -> None:
        """Log in as the demo user through the login flow, as the frontend does."""
        client_id = f"{self.url}/"
        async with self.session.post(
            f"{self.url}/auth/login_flow",
            json={
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": client_id,
            },
        ) as response:
            response.raise_for_status()
            flow_id = (await response.json())["flow_id"]
        async with self.session.post(
            f"{self.url}/auth/login_flow/{flow_id}",
            json={
                "client_id": client_id,
                "username": DEMO_USER,
                "password": DEMO_PASSWORD,
            },
        ) as response:
            response.raise_for_status()
            result = await response.json()
        if result.get("type") != "create_entry":
            raise RuntimeError(f"login failed: {result.get('errors')}")
        await self._exchange_code(result["result"])

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
        """Whether onboarding is complete (its API is gone once it is)."""
        async with self.session.get(f"{self.url}/api/onboarding") as response:
            if response.status == 404:
                return True
            response.raise_for_status()
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

    async def get_json(self, path: str) -> Any:
        """GET a REST API path with the token and return its JSON."""
        async with self.session.get(
            f"{self.url}{path}", headers=self.headers
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def core_state(self) -> str:
        """Return Home Assistant's state: NOT_RUNNING, STARTING, RUNNING, ..."""
        state: str = (await self.get_json("/api/config"))["state"]
        return state

    async def wait_until_running(self) -> None:
        """Wait until Home Assistant has finished starting (needs a token).

        Its HTTP API answers before that, but a stop or restart asked for while
        it is still starting is ignored.
        """
        async with asyncio.timeout(180):
            while await self.core_state() != "RUNNING":  # noqa: ASYNC110  # another process
                await asyncio.sleep(0.5)

    async def states(self) -> dict[str, dict[str, Any]]:
        """All entity states by entity ID."""
        return {
            state["entity_id"]: state for state in await self.get_json("/api/states")
        }

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
    python: str = sys.executable,
) -> AsyncIterator[LiveHomeAssistant]:
    """Start `hass` on host:port with `config_dir`; stop it on exit.

    `python` is the interpreter of the environment whose Home Assistant runs.
    """
    prepare_config_dir(config_dir, host=host, port=port)
    log = (log_file or config_dir / "hass.out").open("ab")
    process = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "homeassistant",
        "--config",
        str(config_dir),
        "--skip-pip",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with aiohttp.ClientSession() as session:
        hass = LiveHomeAssistant(process, f"http://127.0.0.1:{port}", session)
        try:
            await hass.wait_until_up()
            yield hass
        finally:
            await hass.stop()
            log.close()
