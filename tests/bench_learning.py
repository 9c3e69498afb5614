"""Benchmark: how close a budget learned from 429s comes to a limit that binds.

Not part of the test suite (`scripts/bench --rate-limit --learning N`). N
accounts drawn at random (TELZINO_LEARNING_SEED, default 3): 5 to 300 agents
read every 30, 60 or 300 s behind a fixed window, a sliding window or a token
bucket of 1 s to 10 minutes, sized at 0.3 to 1.2 times what the agents need; a
second tier in about a third of them; a restart in the first 10 minutes in
half. No rate-limit headers: each account runs once with bare 429s and once
with `Retry-After`, through the scheduler and the budget alone on a simulated
clock (the property test's simulation, tests/test_scheduler.py).

Printed: each account under the property test's floor (reads) or over its
bound (429s), and for each kind of 429 how many are, and the mean and least
share of the reads possible (min(need, limit) over the measured span).
"""

from dataclasses import replace
import math
import os
import random
import statistics

from scripts.fake_telzino import RateLimit
from tests.test_scheduler import Case, measured_span, run, throughput

SEED = int(os.environ.get("TELZINO_LEARNING_SEED", "3"))
ACCOUNTS = int(os.environ.get("TELZINO_LEARNING_ACCOUNTS", "40"))
KINDS = ("fixed_window", "sliding_window", "token_bucket")
WINDOWS = (1.0, 10.0, 60.0, 600.0)


def draw(rng: random.Random) -> Case:
    """Draw one account (its limit told by bare 429s)."""
    agents, interval = rng.randint(5, 300), rng.choice([30, 60, 300])
    need = agents / interval

    def tier(sizes: tuple[float, ...]) -> RateLimit:
        window = rng.choice(WINDOWS)
        size = max(5, round(need * window * rng.choice(sizes)))
        return RateLimit(rng.choice(KINDS), size, window, retry_after=False)

    limit = tier((0.3, 0.6, 0.9, 1.2))
    second = tier((0.5, 1.0, 2.0)) if rng.random() < 0.3 else None
    restart = rng.choice([None, rng.randint(1, 600)])
    return Case(limit, second, agents=agents, interval=interval, restart_at=restart)


def told(case: Case) -> Case:
    """Return the same account, its limits answering 429 with Retry-After."""
    second = case.second_tier
    return replace(
        case,
        limit=replace(case.limit, retry_after=True),
        second_tier=None if second is None else replace(second, retry_after=True),
    )


def describe(case: Case) -> str:
    """Name an account in one line."""
    tiers = [case.limit] + ([case.second_tier] if case.second_tier else [])
    limits = " + ".join(f"{t.kind} {t.limit}/{t.window:g} s" for t in tiers)
    return (
        f"{limits}, {case.agents} agents at {case.interval} s, "
        f"restart {'none' if case.restart_at is None else f'at {case.restart_at} s'}"
    )


def test_learning() -> None:
    """Print how the budget learned from 429s fares on the drawn accounts."""
    rng = random.Random(SEED)  # noqa: S311  # a drawn scenario, not a secret
    accounts = [draw(rng) for _ in range(ACCOUNTS)]
    lines = [
        (
            f"Limits learned from 429s: {ACCOUNTS} binding accounts drawn with "
            f"seed {SEED}, each with bare 429s and with Retry-After\n"
        ),
        "| 429s | account | reads / possible | share | refused / bound |",
        "|---|---|---:|---:|---:|",
    ]
    summary = []
    for kind, variant in (("bare", lambda case: case), ("Retry-After", told)):
        shares, failed = [], 0
        for account in accounts:
            case = variant(account)
            minutes = 60 + math.ceil(measured_span(case) / 60)
            measured = throughput(run(case, minutes), case)
            share = measured.reads / measured.possible
            shares.append(share)
            if (
                measured.reads < math.floor(measured.floor)
                or measured.refused > measured.most_refused
            ):
                failed += 1
                lines.append(
                    f"| {kind} | {describe(case)} "
                    f"| {measured.reads} / {measured.possible:.0f} | {share:.2f} "
                    f"| {measured.refused} / {measured.most_refused:.0f} |"
                )
        summary.append(
            f"{kind}: {failed} of {ACCOUNTS} fail, share of the reads possible "
            f"mean {statistics.mean(shares):.3f}, least {min(shares):.2f}"
        )
    print("\n".join(lines))
    print(f"\nlearning: {'; '.join(summary)}")
