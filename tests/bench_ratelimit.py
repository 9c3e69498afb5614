"""Benchmark: many agents behind a rate limit (run by `scripts/bench --rate-limit`).

Not part of the test suite. For 20, 150 and 1,000 agents against 1,000
requests an hour (a fixed window announced by X-RateLimit-* headers), 100 a
minute (a sliding window that only answers 429 with Retry-After), 300 a
minute (a token bucket announced by the IETF RateLimit fields) and no limit:
simulated time under a frozen clock, the agents driven by the calibrated
OpenSIPS model (3600 s registrations, a 100 s timer, refreshes a tick late
as often as recorded), a few of them losing
their registration at a refresh (the registrar starts rejecting them).

The agents registered at random moments of the hour before (each on its
own, so their refreshes are spread out; TELZINO_RATELIMIT_TOGETHER=1 has
them register at once). Measured after a warm-up of one ideal round (the first round
reads what the budget allows; agents not read yet are unknown, not
unavailable), over TELZINO_RATELIMIT_HOURS (default 1):

- unavailable: the share of agent-time the Registered sensor is unavailable;
- staleness ratio: the longest gap between two reads of an agent (begun
  after the warm-up, or still open at the end), divided by
  the ideal N / R (the agents over the limit's requests per second, or the
  configured interval when the budget allows it);
- least possible: the staleness ratio no schedule could beat with the same
  looks (at the times they went) and as many other reads, placed as evenly
  as the looks allow. A floor, not always reachable: it lets reads go at any
  moment, where the budget lets them go at its pace (a fixed window's first,
  shorter window spares reads the later ones do not);
- 429 share: requests answered 429 over all requests;
- budget use: requests admitted over those the limit allows, where the
  agents need more than it allows;
- detection p95: from a loss at a refresh to the Registered sensor off, where
  the budget allows the refresh looks (at least 3 requests per agent-hour).
"""

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import itertools
import math
import os
import random
import statistics
import time

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, STATE_OFF, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.telzino.watch import RefreshWatch
from scripts.fake_telzino import LATE_TICK_SHARE, FakeTelzino, RateLimit, serve
from tests.bench_detection import START, percentile, truth
from tests.common import make_entry, registered_entity_ids, setup_entry

HOURS = float(os.environ.get("TELZINO_RATELIMIT_HOURS", "1"))
TOGETHER = bool(os.environ.get("TELZINO_RATELIMIT_TOGETHER"))
# TELZINO_RATELIMIT_SEED=S: another scenario of the same kind (other moments
# of registration, losses and late refreshes).
SEED = f" {seed}" if (seed := os.environ.get("TELZINO_RATELIMIT_SEED")) else ""
INTERVAL = 60
REGISTRATION, TIMER = 3600, 100.0
AGENT_COUNTS = (20, 150, 1000)
LIMITS: dict[str, RateLimit | None] = {
    "1,000/h": RateLimit("fixed_window", 1000, 3600, headers="x-ratelimit"),
    "100/min": RateLimit("sliding_window", 100, 60),
    "300/min": RateLimit("token_bucket", 300, 60, headers="ietf"),
    "none": None,
}
# Agents losing their registration at a refresh, per case.
LOSSES = 8
LOOKS_NEED_PER_AGENT_HOUR = 3


@dataclass
class Result:
    """One case's figures."""

    unavailable: float
    staleness: float
    least_staleness: float
    share_429: float
    budget_use: float | None
    detection_p95: float | None
    losses: int
    effective: float


async def run_case(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, agents: int, limit_name: str
) -> Result:
    """Play one case; return its figures."""
    limit = LIMITS[limit_name]
    rate = None if limit is None else limit.limit / limit.window
    ideal = INTERVAL if rate is None else max(INTERVAL, agents / rate)
    warm_up = ideal + 300
    end = warm_up + HOURS * 3600
    freezer.move_to(datetime.fromtimestamp(START, UTC))
    fake = FakeTelzino(clock=time.time)
    fake.close_connections = True
    fake.stats.request_times = deque()
    rng = random.Random(f"{agents} {limit_name}{SEED}")  # noqa: S311  # reproducible
    # Their IDs from a generator of their own: the scenario draws what it drew.
    fakes = fake.add_agents(agents, rng=random.Random(f"{agents} agent IDs"))  # noqa: S311
    ids = [agent.id for agent in fakes]
    for agent in fakes:
        agent.registration_timeout = REGISTRATION
        # Registered at some moment of the last hour, as agents that each
        # registered on their own are: their refreshes are spread out
        # (TELZINO_RATELIMIT_TOGETHER=1: all at once, as after an outage).
        if not TOGETHER:
            freezer.move_to(datetime.fromtimestamp(START - rng.uniform(0, 3600), UTC))
        fake.simulate(
            agent.id,
            timer_interval=TIMER,
            phase=rng.uniform(0, TIMER),
            late_tick_share=LATE_TICK_SHARE,
        )
    freezer.move_to(datetime.fromtimestamp(START, UTC))
    # A few agents whose registrar starts rejecting them after the warm-up:
    # each loses its registration at its next refresh.
    watched_debug: set[str] = set()
    failing = {
        agent_id: START + warm_up + rng.uniform(0, HOURS * 3600 - 1800)
        for agent_id in rng.sample(ids, min(LOSSES, agents))
    }
    watched_debug.update(failing)
    fake.rate_limit = (
        None
        if limit is None
        else RateLimit(limit.kind, limit.limit, limit.window, headers=limit.headers)
    )
    entity_of = registered_entity_ids(fakes)
    off_at: dict[str, list[float]] = {}
    unavailable_since: dict[str, float] = {}
    unavailable_time = 0.0

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        nonlocal unavailable_time
        new = event.data["new_state"]
        if new is None or (agent_id := entity_of.get(new.entity_id)) is None:
            return
        now = time.time()
        if os.environ.get("TELZINO_RATELIMIT_DEBUG") and agent_id in watched_debug:
            print("STATE", agent_id[-4:], round(now - START), new.state)
        if new.state == STATE_OFF:
            off_at.setdefault(agent_id, []).append(now)
        if new.state == STATE_UNAVAILABLE:
            unavailable_since.setdefault(agent_id, now)
        elif (since := unavailable_since.pop(agent_id, None)) is not None:
            unavailable_time += max(now - max(since, START + warm_up), 0.0)
            if os.environ.get("TELZINO_RATELIMIT_DEBUG"):
                print(
                    "UNAVAILABLE",
                    agent_id[-4:],
                    round(since - START),
                    round(now - START),
                )

    async with serve(fake) as url:
        entry = await setup_entry(hass, make_entry(url, ids, scan_interval=INTERVAL))
        looks_at = record_looks(entry.runtime_data.watch)
        unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
        for second in range(1, int(end) + 1):
            now = START + second
            for agent_id, at in list(failing.items()):
                if at <= now:
                    fake.registrants[agent_id].set_behaviour(
                        fake.agents[agent_id], "rejects", now
                    )
                    del failing[agent_id]
            freezer.tick(timedelta(seconds=1))
            async_fire_time_changed(hass)
            await hass.async_block_till_done(wait_background_tasks=True)
        effective = entry.runtime_data.scheduler.effective_interval.total_seconds()
        unsubscribe()
        await hass.config_entries.async_unload(entry.entry_id)
    stop = START + end
    for since in unavailable_since.values():
        unavailable_time += stop - max(since, START + warm_up)
    # Every agent's reads; the longest gap that ends after the warm-up.
    reads: dict[str, list[float]] = {agent_id: [] for agent_id in ids}
    total = refused = admitted = 0
    for at, path, allowed in fake.stats.request_times:
        if allowed and path.endswith("/status"):
            reads[path.split("/")[3]].append(at)
        if at < START + warm_up:
            continue
        total += 1
        refused += not allowed
        admitted += allowed
    # Gaps that begin after the warm-up (the first round's order is not the
    # steady state's), and the gap still open at the end.
    worst = steady = 0.0
    for agent_id, times in reads.items():
        ends = [*times, stop]
        gaps = [
            (earlier, later - earlier)
            for earlier, later in zip(times, ends[1:], strict=True)
            if earlier >= START + warm_up
        ]
        gap = max((length for _, length in gaps), default=0.0)
        if os.environ.get("TELZINO_RATELIMIT_DEBUG") and gap > worst:
            print("GAP", agent_id[-4:], round(gap), [round(t - START) for t in times])
        worst = max(worst, gap)
        # Past the first hour: the agents that registered more than one
        # refresh period before the start refresh twice in it, and their
        # looks bunch up there.
        steady = max(
            [steady]
            + [length for earlier, length in gaps if earlier >= START + warm_up + 3600]
        )
    if os.environ.get("TELZINO_RATELIMIT_DEBUG") and HOURS > 1:
        print(
            f"LONGEST GAP AFTER THE FIRST HOUR {steady:.0f} s, "
            f"ratio {steady / ideal:.2f}"
        )
    if os.environ.get("TELZINO_RATELIMIT_DEBUG"):
        print_spans(fake.stats.request_times, looks_at)
        print_reads_between_looks(reads, looks_at, START + warm_up)
    # The reads sent besides the looks, placed as evenly as the looks allow.
    looks_after = {
        agent_id: [at for at in looks_at.get(agent_id, []) if at >= START + warm_up]
        for agent_id in ids
    }
    sent_after = sum(at >= START + warm_up for times in reads.values() for at in times)
    least = least_longest_gap(
        [
            later - earlier
            for times in looks_after.values()
            for earlier, later in itertools.pairwise([START + warm_up, *times, stop])
        ],
        sent_after - sum(map(len, looks_after.values())),
    )
    needed = agents / INTERVAL
    budget_use = (
        admitted / (rate * (end - warm_up))
        if rate is not None and needed > rate
        else None
    )
    delays: list[float] = []
    for agent_id, model in fake.registrants.items():
        model.sync(fake.agents[agent_id], stop)
        for loss in truth(model, stop).losses:
            if loss.start < START + warm_up or not loss.at_refresh:
                continue
            shown = [t for t in off_at.get(agent_id, []) if loss.start <= t]
            delays.append((shown[0] if shown else stop) - loss.start)
            if os.environ.get("TELZINO_RATELIMIT_DEBUG"):
                print(
                    "LOSS",
                    round(loss.start - START),
                    "shown",
                    [round(t - START) for t in shown[:2]],
                    "reads",
                    [round(t - START) for t in reads[agent_id] if t > loss.start - 600][
                        :8
                    ],
                )
    looks_possible = rate is None or rate * 3600 / agents >= LOOKS_NEED_PER_AGENT_HOUR
    return Result(
        unavailable=unavailable_time / (agents * (end - warm_up)),
        staleness=worst / ideal,
        least_staleness=least / ideal,
        share_429=refused / total if total else 0.0,
        budget_use=budget_use,
        detection_p95=percentile(delays, 95) if looks_possible and delays else None,
        losses=len(delays),
        effective=effective,
    )


def print_spans(
    request_times: Iterable[tuple[float, str, bool]], looks_at: dict[str, list[float]]
) -> None:
    """Print what went out, per 5 minutes, then when a 429 came.

    Per span: the status requests admitted, the looks among them, and the
    other requests admitted (token, agent list).
    """
    spans: dict[int, list[int]] = {}
    refused = []
    for at, path, allowed in request_times:
        if not allowed:
            refused.append(round(at - START))
            continue
        span = spans.setdefault(int((at - START) // 300), [0, 0, 0])
        span[0 if path.endswith("/status") else 2] += 1
    for at in itertools.chain.from_iterable(looks_at.values()):
        spans.setdefault(int((at - START) // 300), [0, 0, 0])[1] += 1
    for span, (status, looks, other) in sorted(spans.items()):
        print(f"SPAN {span * 300}: status {status}, looks {looks}, other {other}")
    print("429 AT", refused)


def print_reads_between_looks(
    reads: dict[str, list[float]], looks_at: dict[str, list[float]], since: float
) -> None:
    """Print how many reads each agent got between two refreshes, and their gaps.

    Between two refreshes: from a refresh's last look to the next refresh's
    first (a late refresh has a second look a tick after the first). Gaps,
    medians in seconds: read to read, read to look, look to read.
    """
    per_period: Counter[int] = Counter()
    gaps: dict[str, list[float]] = {"read-read": [], "read-look": [], "look-read": []}
    for agent_id, times in reads.items():
        # Both clocks are the frozen one, moved a second at a time.
        looks = {round(at) for at in looks_at.get(agent_id, [])}
        kinds = ["look" if round(at) in looks else "read" for at in times]
        look_times = [
            at for at, kind in zip(times, kinds, strict=True) if kind == "look"
        ]
        for earlier, later in itertools.pairwise(look_times):
            if earlier >= since and later - earlier > REGISTRATION / 4:
                per_period[
                    sum(
                        earlier < at < later and kind == "read"
                        for at, kind in zip(times, kinds, strict=True)
                    )
                ] += 1
        for (earlier, kind), (later, next_kind) in itertools.pairwise(
            zip(times, kinds, strict=True)
        ):
            if earlier >= since and f"{kind}-{next_kind}" in gaps:
                gaps[f"{kind}-{next_kind}"].append(later - earlier)
    print(
        "READS BETWEEN TWO REFRESHES (reads: periods)", dict(sorted(per_period.items()))
    )
    print(
        "GAP MEDIANS",
        {kind: round(statistics.median(g)) for kind, g in gaps.items() if g},
    )


def record_looks(watch: RefreshWatch | None) -> dict[str, list[float]]:
    """Record when each agent's refresh looks are sent, from now on."""
    looks_at: dict[str, list[float]] = {}
    if watch is None:
        return looks_at
    taken = watch.taken

    def taken_and_recorded(agent_id: str) -> None:
        looks_at.setdefault(agent_id, []).append(time.time())
        taken(agent_id)

    watch.taken = taken_and_recorded  # type: ignore[method-assign]
    return looks_at


def least_longest_gap(segments: list[float], reads: int) -> float:
    """Return the shortest longest gap `reads` reads can keep within these segments.

    Each segment lies between two fixed requests (looks, or the measured
    span's ends); `k` reads split a segment into gaps no longer than its
    length over k + 1, and no placement does better.
    """

    def reads_needed(gap: float) -> int:
        return sum(max(math.ceil(length / gap) - 1, 0) for length in segments)

    low, high = 0.0, max(segments, default=0.0)
    for _ in range(60):
        middle = (low + high) / 2
        if middle > 0 and reads_needed(middle) <= reads:
            high = middle
        else:
            low = middle
    return high


RESULTS: dict[tuple[int, str], Result] = {}


@pytest.mark.parametrize("limit_name", LIMITS)
@pytest.mark.parametrize("agents", AGENT_COUNTS)
async def test_rate_limit(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    agents: int,
    limit_name: str,
) -> None:
    """Play one case; after the last, print the table and the summary line."""
    RESULTS[agents, limit_name] = result = await run_case(
        hass, freezer, agents, limit_name
    )
    print(f"\ncase {agents} agents, {limit_name}: {result}")
    if len(RESULTS) < len(AGENT_COUNTS) * len(LIMITS):
        return
    lines = [
        (
            f"Rate limits ({HOURS:g} h simulated after one ideal round, {INTERVAL} s "
            f"interval, {REGISTRATION} s registrations, {TIMER:g} s timer)"
        ),
        "",
        (
            "| agents | limit | effective interval s | unavailable | staleness ratio "
            "| least possible | 429 share | budget use | losses at refresh "
            "| detection p95 s |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (count, name), r in RESULTS.items():
        use = "-" if r.budget_use is None else f"{r.budget_use:.0%}"
        p95 = "-" if r.detection_p95 is None else f"{r.detection_p95:.1f}"
        lines.append(
            f"| {count} | {name} | {r.effective:.0f} | {r.unavailable:.2%} "
            f"| {r.staleness:.2f} | {r.least_staleness:.2f} | {r.share_429:.2%} "
            f"| {use} | {r.losses} | {p95} |"
        )
    results = list(RESULTS.values())
    uses = [r.budget_use for r in results if r.budget_use is not None]
    p95s = [r.detection_p95 for r in results if r.detection_p95 is not None]
    lines += [
        "",
        (
            "rate limit: unavailable "
            f"{max(r.unavailable for r in results) * 100:.3f} %, staleness ratio "
            f"{max(r.staleness for r in results):.2f}, 429 share "
            f"{max(r.share_429 for r in results) * 100:.2f} %, budget use "
            f"{min(uses, default=math.nan) * 100:.0f} %, detection p95 "
            f"{max(p95s, default=math.nan):.1f} s"
        ),
    ]
    print("\n\n" + "\n".join(lines))
