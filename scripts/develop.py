"""Run Home Assistant with the Telzino integration against the fake Telzino API.

No Telzino account needed: the fake API serves demo agents in several states
(one loses and regains its registration every few minutes). On the first run
Home Assistant is onboarded and the Telzino entry is added for you.
"""

import argparse
import asyncio
import os
from pathlib import Path

from scripts.fake_telzino import FakeTelzino, flap_demo_agent, seed_demo, serve
from scripts.live_ha import DEMO_PASSWORD, DEMO_USER, ROOT, run_home_assistant

CONFIG_DIR = ROOT / "config"


async def develop(port: int, api_port: int, host: str, config_dir: Path) -> None:
    """Serve the fake API and Home Assistant until interrupted."""
    fake = FakeTelzino()
    seed_demo(fake)
    flapping = asyncio.create_task(flap_demo_agent(fake))
    client_id, client_secret = next(iter(fake.clients.items()))
    async with (
        serve(fake, "127.0.0.1", api_port) as api_url,
        run_home_assistant(config_dir, port, host=host) as hass,
    ):
        if not await hass.is_onboarded():
            await hass.onboard()
            await hass.add_telzino(api_url, client_id, client_secret)
        print(
            f"\nHome Assistant: http://127.0.0.1:{port}\n"
            f"  log in as {DEMO_USER!r} with password {DEMO_PASSWORD!r}\n"
            f"  Settings > Devices & services > Telzino shows the demo agents\n"
            f"Fake Telzino API: {api_url} (client ID {client_id!r}, "
            f"secret {client_secret!r})\n"
            f"  drive it: GET {api_url}/_fake/state, "
            f'POST {api_url}/_fake/agents/<id>/state {{"state": ...}}\n'
            f"Home Assistant log: {config_dir / 'home-assistant.log'}\n"
            "Ctrl-C stops both.",
            flush=True,
        )
        try:
            await hass.process.wait()
        finally:
            flapping.cancel()


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
    args = parser.parse_args()
    try:
        asyncio.run(develop(args.port, args.api_port, args.host, CONFIG_DIR))
    except KeyboardInterrupt:
        print("\nStopped.")


if __name__ == "__main__":
    main()
