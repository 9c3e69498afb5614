"""Serve the fake Telzino API: `python -m scripts.fake_telzino --port 8787 --demo`.

Prints one JSON line with the URL and the client credentials, then serves
until interrupted.
"""

import argparse
import asyncio
from contextlib import suppress
import json

from .const import CLIENT_ID, CLIENT_SECRET
from .demo import flap_demo_agent, seed_demo
from .ratelimit import RateLimit
from .server import FakeTelzino, serve


async def _main(
    host: str,
    port: int,
    *,
    demo: bool,
    agents: int,
    latency: float,
    rate_limit: RateLimit | None,
) -> None:
    fake = FakeTelzino(latency=latency)
    fake.add_agents(agents)
    fake.rate_limit = rate_limit
    background: set[asyncio.Task[None]] = set()  # keeps the task referenced
    if demo:
        seed_demo(fake)
        background.add(asyncio.create_task(flap_demo_agent(fake)))
    async with serve(fake, host, port) as url:
        print(
            json.dumps(
                {"url": url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
            ),
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="Serve the fake Telzino API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--demo", action="store_true", help="seed demo agents")
    parser.add_argument("--agents", type=int, default=0, help="add N numbered agents")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every answer"
    )
    parser.add_argument(
        "--rate-limit",
        type=RateLimit.parse,
        default=None,
        help="KIND:LIMIT/WINDOW[:HEADERS][:no-retry-after], e.g. sliding_window:100/60",
    )
    args = parser.parse_args()
    with suppress(KeyboardInterrupt):
        asyncio.run(
            _main(
                args.host,
                args.port,
                demo=args.demo,
                agents=args.agents,
                latency=args.latency,
                rate_limit=args.rate_limit,
            )
        )


if __name__ == "__main__":
    main()
