"""Benchmark of the Telzino client's batched status fetch against the fake API.

For each agent count it times one `get_registration_statuses` call with a fixed
fake latency and compares it with the ideal ceil(N / bound) * latency.
"""

import argparse
import asyncio
import math
import time

import aiohttp

from custom_components.telzino.api import ClientCredentials, TelzinoClient
from scripts.fake_telzino import STATUS, TOKEN, FakeTelzino, serve


async def measure(agents: int, latency: float) -> dict[str, float]:
    """Time one batch on a cold client (token request included)."""
    fake = FakeTelzino(latency=latency)
    ids = [agent.id for agent in fake.add_agents(agents)]
    client_id, client_secret = next(iter(fake.clients.items()))
    async with serve(fake) as url, aiohttp.ClientSession() as session:
        client = TelzinoClient(
            ClientCredentials(client_id, client_secret), session=session, api_url=url
        )
        await client.authenticate()
        start = time.perf_counter()
        results = await client.get_registration_statuses(ids)
        wall = time.perf_counter() - start
    failures = sum(isinstance(result, Exception) for result in results.values())
    if failures:
        raise SystemExit(f"{failures} of {agents} status requests failed")
    ideal = math.ceil(agents / client.max_concurrency) * latency
    return {
        "agents": agents,
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal,
        "status": fake.stats.requests[STATUS],
        "token": fake.stats.requests[TOKEN],
        "in_flight": fake.stats.max_in_flight,
    }


async def main() -> None:
    """Print a markdown table and the worst ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 10, 100, 500])
    args = parser.parse_args()
    print(f"Client batch fetch, fake latency {args.latency * 1000:.0f} ms\n")
    print(
        "| agents | wall s | ideal s | ratio | status requests | token requests | max in flight |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for agents in args.agents:
        row = await measure(agents, args.latency)
        worst = max(worst, row["ratio"])
        print(
            f"| {agents} | {row['wall']:.3f} | {row['ideal']:.3f} | {row['ratio']:.2f} "
            f"| {row['status']} | {row['token']} | {row['in_flight']} |"
        )
    print(f"\nworst ratio to ideal: {worst:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
