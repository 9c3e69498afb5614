"""Run Home Assistant with the Telzino integration against the fake Telzino API.

No Telzino account needed: the fake API serves demo agents in several states
(one loses and regains its registration every few minutes). On the first run
Home Assistant is onboarded and the Telzino entry is added for you. Home
Assistant is supervised as its own container does it: when it exits to be
restarted (exit code 100, the UI's Restart) it is started again on the same
port, against the same fake API, which keeps its state.
"""

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import os
from pathlib import Path
import sys

from homeassistant.const import RESTART_EXIT_CODE

from scripts.fake_telzino import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeTelzino,
    RateLimit,
    flap_demo_agent,
    seed_demo,
    serve,
)
from scripts.live_ha import (
    DEMO_PASSWORD,
    DEMO_USER,
    ROOT,
    HomeAssistantExitedError,
    LiveHomeAssistant,
    point_telzino_entries_at,
    run_home_assistant,
)

CONFIG_DIR = ROOT / "config"
LOG_TAIL_LINES = 30

type OnStart = Callable[[LiveHomeAssistant], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class LocalHomeAssistant:
    """Where and how the local Home Assistant runs."""

    config_dir: Path
    port: int
    host: str
    api_url: str
    on_start: OnStart | None = None

    async def run_once(self, *, first: bool) -> int:
        """Start Home Assistant, set it up on its first run, wait until it exits."""
        async with run_home_assistant(
            self.config_dir, self.port, host=self.host
        ) as hass:
            if await hass.is_onboarded():
                await hass.log_in()
            else:
                await hass.onboard()
                await hass.add_telzino(self.api_url, CLIENT_ID, CLIENT_SECRET)
            await hass.wait_until_running()
            if first:
                print_welcome(hass, self.api_url, self.config_dir)
            else:
                print(f"Home Assistant is back on {hass.url}", flush=True)
            if self.on_start is not None:
                await self.on_start(hass)
            return await hass.process.wait()

    async def supervise(self) -> int:
        """Start Home Assistant again whenever it exits to be restarted."""
        first = True
        while True:
            try:
                exit_code = await self.run_once(first=first)
            except HomeAssistantExitedError as err:
                exit_code = err.returncode
            if exit_code != RESTART_EXIT_CODE:
                return exit_code
            print("Home Assistant asked to be restarted; starting it again", flush=True)
            first = False


async def develop(
    port: int,
    api_port: int,
    host: str,
    config_dir: Path,
    *,
    on_start: OnStart | None = None,
    rate_limit: RateLimit | None = None,
) -> int:
    """Serve the fake API and keep Home Assistant running; return its exit code.

    `on_start` is awaited each time Home Assistant is up and running, with a
    logged-in session (the tests use it).
    The fake API outlives Home Assistant's restarts.
    """
    fake = FakeTelzino()
    fake.rate_limit = rate_limit
    seed_demo(fake)
    flapping = asyncio.create_task(flap_demo_agent(fake))
    try:
        async with serve(fake, "127.0.0.1", api_port) as api_url:
            # A run with another --api-port finds the entry pointing elsewhere.
            point_telzino_entries_at(config_dir, api_url)
            local = LocalHomeAssistant(
                config_dir=config_dir,
                port=port,
                host=host,
                api_url=api_url,
                on_start=on_start,
            )
            exit_code = await local.supervise()
    finally:
        flapping.cancel()
    if exit_code != 0:
        print_crash(exit_code, config_dir)
    return exit_code


def print_welcome(hass: LiveHomeAssistant, api_url: str, config_dir: Path) -> None:
    """Say where everything is."""
    print(
        f"\nHome Assistant: {hass.url}\n"
        f"  log in as {DEMO_USER!r} with password {DEMO_PASSWORD!r}\n"
        f"  Settings > Devices & services > Telzino shows the demo agents\n"
        f"Fake Telzino API: {api_url} (client ID {CLIENT_ID!r}, "
        f"secret {CLIENT_SECRET!r})\n"
        f"  drive it: GET {api_url}/_fake/state, "
        f'POST {api_url}/_fake/agents/<id>/state {{"state": ...}}\n'
        f"Home Assistant log: {config_dir / 'home-assistant.log'}\n"
        "A restart from the UI starts Home Assistant again; Ctrl-C stops both.",
        flush=True,
    )


def print_crash(exit_code: int, config_dir: Path) -> None:
    """Report an unexpected exit with the end of Home Assistant's output."""
    print(f"\nHome Assistant exited with code {exit_code}.", file=sys.stderr)
    for name in ("home-assistant.log", "hass.out"):
        log = config_dir / name
        if log.exists() and (lines := log.read_text(errors="replace").splitlines()):
            print(f"Last lines of {log}:", file=sys.stderr)
            print("\n".join(lines[-LOG_TAIL_LINES:]), file=sys.stderr)
            break


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TELZINO_HA_PORT", "8123")),
        help="Home Assistant's port (env TELZINO_HA_PORT, default 8123)",
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=int(os.environ.get("TELZINO_FAKE_PORT", "8787")),
        help="the fake Telzino API's port (env TELZINO_FAKE_PORT, default 8787)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("TELZINO_HA_HOST", "127.0.0.1"),
        help="address Home Assistant listens on (0.0.0.0 for other machines)",
    )
    parser.add_argument(
        "--rate-limit",
        type=RateLimit.parse,
        default=os.environ.get("TELZINO_FAKE_RATE_LIMIT"),
        help=(
            "rate limit the fake API: KIND:LIMIT/WINDOW[:HEADERS][:no-retry-after], "
            "e.g. sliding_window:100/60 or fixed_window:1000/3600:x-ratelimit "
            "(env TELZINO_FAKE_RATE_LIMIT; also settable at run time over "
            "POST /_fake/rate_limit)"
        ),
    )
    args = parser.parse_args()
    try:
        exit_code = asyncio.run(
            develop(
                args.port,
                args.api_port,
                args.host,
                CONFIG_DIR,
                rate_limit=args.rate_limit,
            )
        )
    except KeyboardInterrupt:
        print("\nStopped.")
        return
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
