"""Expiry-aware polling: a failed refresh is seen within seconds, cheaply.

The fake API's registrant model drives the agents under Home Assistant's
frozen clock; time moves in one-second steps so that every planned look runs
when it is due.
"""

import dataclasses
from datetime import UTC, datetime, timedelta
import itertools
import random
import time

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.telzino.api import RegistrationState, RegistrationStatus
from custom_components.telzino.watch import RefreshWatch, _timer_of
from scripts.fake_telzino import FRONT_DESK, SALES_LINE, STATUS, FakeTelzino, Registrant
from tests.common import make_entry, run_for, setup_entry

REGISTERED = "binary_sensor.front_desk_registered"
SALES = "binary_sensor.sales_line_registered"
NEXT_ATTEMPT = "sensor.front_desk_next_registration_attempt"
TIMER = 100.0
START = 1_795_800_030.0


async def setup_simulated(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    *,
    watch: bool = True,
    sales: bool = False,
    scan_interval: int = 60,
    **registrant: object,
) -> tuple[MockConfigEntry, Registrant]:
    """Set up Front desk registered for an hour, driven by the registrant model.

    Set up 30 s after a timer tick, so that the interval polls (every minute
    from then) and the refreshes (every hour at a tick) fall where the tests
    expect them.
    """
    freezer.move_to(datetime.fromtimestamp(START, UTC))
    fake.clock = time.time  # frozen with Home Assistant's clock
    fake.close_connections = True
    fake.add_agent("Front desk", FRONT_DESK)
    model = fake.simulate(FRONT_DESK, timer_interval=TIMER, **registrant)
    watched = [FRONT_DESK]
    if sales:
        # A second agent, registered, that the tests leave alone.
        fake.add_agent("Sales line", SALES_LINE)
        watched.append(SALES_LINE)
    entry = await setup_entry(
        hass,
        make_entry(fake_url, watched, watch_refresh=watch, scan_interval=scan_interval),
    )
    return entry, model


def interval_polls(seconds: int) -> range:
    """Return how many 60 s polls fit in `seconds`, either way of the boundary."""
    return range(seconds // 60, seconds // 60 + 2)


def seconds_until_refresh(model: Registrant) -> int:
    """Return the seconds from now to the tick that will refresh the binding."""
    refresh = model.next_tick(model.refresh_point() - 0.001)  # type: ignore[operator]
    return int(refresh - time.time()) + 1


@pytest.mark.parametrize("scan_interval", [60, 600])
@pytest.mark.parametrize(
    ("behaviour", "within"), [("rejects", 9), ("errors", 9), ("silent", 36)]
)
async def test_a_failed_refresh_is_seen_within_seconds(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    behaviour: str,
    within: int,
    scan_interval: int,
) -> None:
    """A failure at refresh time shows within seconds, not at the next poll.

    Rejected and erroring registrars answer at once (seen by the look 3 s
    after the refresh, or by an interval poll due within 5 s of it); a silent
    one is seen right after the SIP transaction times out.
    """
    entry, model = await setup_simulated(
        hass, fake, fake_url, freezer, scan_interval=scan_interval
    )
    await run_for(hass, freezer, seconds_until_refresh(model) + 10)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert model.registers_sent == 1  # seen by the watch's look

    model.set_behaviour(fake.agents[FRONT_DESK], behaviour, time.time())  # type: ignore[arg-type]
    await run_for(hass, freezer, seconds_until_refresh(model) - 1)
    assert hass.states.get(REGISTERED).state == STATE_ON
    looks = entry.runtime_data.watch.polls
    await run_for(hass, freezer, within)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    # The look at the tick; for a silent registrar, one more once the
    # REGISTER has timed out.
    assert entry.runtime_data.watch.polls - looks == (2 if behaviour == "silent" else 1)


async def test_looks_are_few_and_at_least_five_seconds_apart(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Over two refreshes: a few extra requests, never two within 5 s."""
    entry, _ = await setup_simulated(hass, fake, fake_url, freezer)
    fake.reset_stats()
    seconds = 2 * 3600 + 200
    await run_for(hass, freezer, seconds)
    looks = entry.runtime_data.watch.polls
    assert 0 < looks <= 6
    sent = fake.stats.status_times
    # The interval polls keep their schedule (a minute, give or take the
    # test clock's second): with budget to spare, the looks come on top.
    assert seconds // 60 - 2 <= len(sent) - looks <= seconds // 60 + 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert all(gap >= 5 for gap in gaps)


async def test_the_option_turns_the_watch_off(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """With the watch off, only interval polls are sent."""
    entry, _ = await setup_simulated(hass, fake, fake_url, freezer, watch=False)
    assert entry.runtime_data.watch is None
    fake.reset_stats()
    await run_for(hass, freezer, 3600 + 200)
    assert fake.stats.requests[STATUS] in interval_polls(3600 + 200)


async def test_a_429_during_a_watch_holds_every_request_until_retry_after(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Retry-After from a watch poll applies to the interval polls as well."""
    _, model = await setup_simulated(hass, fake, fake_url, freezer)
    # Let the next interval poll pass first, then rate limit the watch's look.
    await run_for(hass, freezer, seconds_until_refresh(model) - 5)
    fake.inject(STATUS, status=429, retry_after="300", times=1)
    fake.reset_stats()
    await run_for(hass, freezer, 15)
    assert fake.stats.requests[STATUS] == 1  # the look, rate limited
    await run_for(hass, freezer, 280)
    assert fake.stats.requests[STATUS] == 1  # nothing before Retry-After
    assert hass.states.get(REGISTERED).state == STATE_UNAVAILABLE
    await run_for(hass, freezer, 70)
    assert fake.stats.requests[STATUS] >= 2
    assert hass.states.get(REGISTERED).state == STATE_ON


@pytest.mark.parametrize("expires", [0, -3600, 10 * 86400])
async def test_no_watch_without_a_trustworthy_expiry(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    expires: int,
) -> None:
    """Missing, past or absurd expiries fall back to plain interval polling."""
    fake.clock = time.time
    fake.close_connections = True
    fake.add_agent(
        "Front desk",
        FRONT_DESK,
        expires=time.time() + expires if expires else None,
    )
    entry = await setup_entry(hass, make_entry(fake_url, [FRONT_DESK]))
    fake.reset_stats()
    await run_for(hass, freezer, 600)
    assert fake.stats.requests[STATUS] in interval_polls(600)
    assert entry.runtime_data.watch.polls == 0


@pytest.mark.parametrize(
    "registrant",
    [
        # expires = the binding's expiry, T + E (the other reading).
        {"expires_reports": "binding"},
        # OpenSIPS 3.x: the refresh within the last TI before expiry.
        {"release": "3.x"},
        # A 200 OK in the second after its tick's: the refresh flips to the
        # next tick, a whole TI later (E - TI after the last one).
        {"phase": 0.999},
    ],
    ids=["binding_expiry", "opensips_3", "flipped_tick"],
)
async def test_a_rejection_at_any_candidate_tick_shows_within_seconds(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    registrant: dict[str, object],
) -> None:
    """Whatever `expires` means and whichever tick refreshes: seen within 9 s."""
    _, model = await setup_simulated(hass, fake, fake_url, freezer, **registrant)
    model.set_behaviour(fake.agents[FRONT_DESK], "rejects", time.time())
    await run_for(hass, freezer, seconds_until_refresh(model) - 1)
    assert hass.states.get(REGISTERED).state == STATE_ON
    await run_for(hass, freezer, 9)
    assert hass.states.get(REGISTERED).state == STATE_OFF


async def test_a_failed_registration_is_not_looked_at_before_its_retry(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """No looks for E - TI after a failure; the retry's success shows within seconds.

    The registrar is back a minute after the failure: OpenSIPS retries only
    at its threshold, and Next registration attempt says when.
    """
    entry, model = await setup_simulated(hass, fake, fake_url, freezer)
    agent = fake.agents[FRONT_DESK]
    model.set_behaviour(agent, "errors", time.time())
    await run_for(hass, freezer, seconds_until_refresh(model) + 9)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    model.set_behaviour(agent, "answers", time.time() + 60)
    retry = model.next_tick(model.registration_t_out - 0.001)  # type: ignore[operator]
    assert dt_util.parse_datetime(
        hass.states.get(NEXT_ATTEMPT).state
    ) == datetime.fromtimestamp(retry, UTC)
    looks = entry.runtime_data.watch.polls
    await run_for(hass, freezer, int(retry - time.time()) - 1)
    assert entry.runtime_data.watch.polls == looks  # nothing to look at
    assert hass.states.get(REGISTERED).state == STATE_OFF
    await run_for(hass, freezer, 6)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(NEXT_ATTEMPT).state == STATE_UNKNOWN


def reading(
    now: datetime,
    *,
    state: RegistrationState = RegistrationState.REGISTERED,
    sent: float | None = 0,
    expires: float | None = 3600,
    interval: int | None = 3600,
) -> RegistrationStatus:
    """Return a status as the API gives it, times in seconds from `now`."""
    return RegistrationStatus(
        state=state,
        raw_state=state.name,
        state_code=None,
        is_registered=state is RegistrationState.REGISTERED,
        enabled=True,
        expires=None if expires is None else now + timedelta(seconds=expires),
        last_register_sent=None if sent is None else now + timedelta(seconds=sent),
        registration_interval=interval,
        error_message=None,
    )


def test_refreshes_the_api_does_not_stamp_leave_the_ticks_unknown() -> None:
    """A later `expires` with lastRegisterSent unmoved: the agent's ticks are not known.

    No look at ticks counted from a stale REGISTER time, no bound from them,
    and a refresh may be under way at any time; a refresh stamped again
    brings the ticks back.
    """
    watch = RefreshWatch()
    now = dt_util.utcnow()
    watch.observe("a", reading(now, sent=0, expires=3600), now)
    assert watch.refresh_due("a") == now + timedelta(seconds=3400)
    assert not watch.refresh_may_be_under_way("a", now)
    # Refreshed at 3500 s: a new expiry, the REGISTER's time as it was.
    later = now + timedelta(seconds=3510)
    watch.observe("a", reading(now, sent=0, expires=7100), later)
    assert watch.refresh_due("a") is None
    assert watch.next_look() is None
    assert watch.refresh_may_be_under_way("a", later)
    # Stamped again at the next refresh: its ticks are known again.
    latest = now + timedelta(seconds=7010)
    watch.observe("a", reading(now, sent=7000, expires=10600), latest)
    assert watch.refresh_due("a") == now + timedelta(seconds=10400)
    assert not watch.refresh_may_be_under_way("a", latest)
    assert not watch.refresh_may_be_under_way("unknown", latest)


def test_what_the_watch_learns_and_plans() -> None:
    """Looks at the candidate ticks; the timer is learned from REGISTER gaps."""
    watch = RefreshWatch()
    now = dt_util.utcnow()
    agent = watch._agents  # what it knows, per agent
    second = timedelta(seconds=1)
    # Registered at a tick just now, binding for an hour: the first candidate
    # tick is 2 TI (the default 100 s) before the expiry.
    watch.observe("a", reading(now, sent=0, expires=3600), now)
    assert agent["a"].planned == now + timedelta(seconds=3400) + 4 * second
    assert watch.refresh_due("a") == now + timedelta(seconds=3400)
    assert watch.next_look() == agent["a"].planned
    assert watch.due(now + timedelta(seconds=3403)) == []
    assert watch.due(now + timedelta(seconds=3404)) == ["a"]
    assert agent["a"].timer == timedelta(seconds=100)
    # Nothing new at that look: the next tick, and so on up to expires + TI.
    then = now + timedelta(seconds=3404)
    watch.observe("a", reading(now, sent=0, expires=3600), then)
    assert agent["a"].planned == now + timedelta(seconds=3504)
    watch.observe(
        "a", reading(now, sent=0, expires=3600), now + timedelta(seconds=3704)
    )
    assert agent["a"].planned is None  # past the window: interval polls only
    # Refreshes of a 60 s registration 40 s, then 50 s apart: a 10 s timer.
    for sent in (0, 40, 90):
        short = reading(now, sent=sent, expires=sent + 50, interval=60)
        watch.observe("s", short, now + timedelta(seconds=sent))
    assert agent["s"].timer == timedelta(seconds=10)
    # A failed agent with a retry threshold in `expires`: no look before it.
    failed = reading(
        now, state=RegistrationState.REGISTER_TIMEOUT, sent=0, expires=3500
    )
    watch.observe("f", failed, now + timedelta(seconds=31))
    assert watch.next_attempt("f") == now + timedelta(seconds=3500)
    assert agent["f"].planned == now + timedelta(seconds=3504)
    # Still failed after that look, with no new REGISTER: no more looks.
    watch.observe("f", failed, now + timedelta(seconds=3504))
    assert agent["f"].planned is None
    # Without it: the failure + E - TI, on the agent's ticks.
    failed = reading(
        now, state=RegistrationState.REGISTER_TIMEOUT, sent=0, expires=None
    )
    watch.observe("g", failed, now + timedelta(seconds=31))
    assert watch.next_attempt("g") == now + timedelta(seconds=3600)
    assert watch.next_attempt("unknown") is None
    # Nor when neither is known; and an agent never registered is not watched.
    unknowable = reading(
        now, state=RegistrationState.REGISTER_TIMEOUT, expires=None, interval=None
    )
    watch.observe("u", unknowable, now)
    assert watch.next_attempt("u") is None
    watch.observe("v", reading(now, sent=None), now)
    assert agent["v"].planned is None
    # One gap: the default if it fits, else (E - gap) / 2; a gap off the
    # pattern (after an enable) is outvoted; nonsense keeps the default.
    assert _timer_of((3400,), 3600) == 100
    assert _timer_of((80,), 120) == 20
    assert _timer_of((3400, 3437, 3400), 3600) == 100
    assert _timer_of((3400, 3500), 3600) == 100
    assert _timer_of((5,), 3600) == 100
    assert _timer_of((3400, 3407), 3600) == 100
    assert _timer_of((3400,), None) == 100
    # Gaps recorded on the real registrant (tests/opensips/): 10 s timers with
    # 60 s and 90 s registrations on 4.x and 3.x, where the drift flips a
    # refresh between two ticks; a registrar that answers 16 s late (3.x
    # counts from the reply: every gap is a tick later, past E); 100 s timers
    # with 250 s and 300 s registrations, not a whole number of ticks.
    assert _timer_of((41, 49, 41, 40), 60) == 10
    assert _timer_of((51, 50, 59, 51), 60) == 10
    assert _timer_of((80, 80, 81, 80), 90) == 10
    assert _timer_of((70, 71, 70, 69), 60) == 10
    assert _timer_of((100, 99, 101, 100), 250) == 100
    assert _timer_of((199, 200, 201), 250) == 100
    assert _timer_of((299, 201), 300) == 100
    # A 60 s timer with hour-long registrations on 4.x (E - 2 TI); 400 s.
    assert _timer_of((3480,), 3600) == 60
    assert _timer_of((2800,), 3600) == 400
    # A registrar that answers at the end of its transaction (over 30 s:
    # OpenSIPS gives up at 29.6 to 30.7 s): a tick later still, on 3.x.
    assert _timer_of((90, 91, 90, 89), 60) == 10
    # A pending REGISTER: look once its transaction has timed out.
    pending = reading(now, state=RegistrationState.REGISTERING, sent=0)
    watch.observe("p", pending, now + timedelta(seconds=1))
    assert agent["p"].planned == now + timedelta(seconds=33)
    # Still pending after its transaction: left to the interval polls.
    watch.observe("p", pending, now + timedelta(seconds=33))
    assert agent["p"].planned is None
    # An expiry implausibly far ahead, or none: no watch.
    watch.observe("b", reading(now, expires=80_000), now)
    assert agent["b"].planned is None
    watch.observe("n", reading(now, expires=80_000, interval=None), now)
    assert agent["n"].planned is not None  # within a day: trusted
    # The scheduler sends a look: counted, and not due again.
    watch.taken("n")
    watch.taken("n")
    assert watch.polls == 1
    assert agent["n"].planned is None
    # A failed look is tried again after a transaction's timeout, 3 times.
    for _ in range(4):
        watch.retry("n", now)
    assert agent["n"].probes == 3
    assert agent["n"].planned == now + timedelta(seconds=33)
    watch.retry("unknown", now)
    watch.retain(["n"])
    assert set(agent) == {"n"}
    assert watch.refresh_due("gone") is None


def test_a_look_comes_at_least_5_s_after_the_reading_it_is_planned_from() -> None:
    """A tick 2 s after a reading is looked at 5 s after it: no two requests within 5 s."""
    watch = RefreshWatch()
    now = dt_util.utcnow()
    watch.observe("a", reading(now, sent=0, expires=3600), now)
    assert watch.next_look() == now + timedelta(seconds=3404)
    # Read again 2 s before that look: the look moves to 5 s after the read.
    read = now + timedelta(seconds=3402)
    watch.observe("a", reading(now, sent=0, expires=3600), read)
    assert watch.next_look() == read + timedelta(seconds=5)


def test_the_next_attempt_follows_the_learned_timer() -> None:
    """A registrant with a 10 s timer retries on its own ticks, not on the default's.

    Refreshes of a 60 s registration 40 s, then 50 s apart teach a 10 s timer;
    a REGISTER at 130 s that times out (30 s) is tried again at the first tick
    past 130 + 30 + 60 - 10 s: 210 s (with the default 100 s timer: 130 s).
    """
    watch = RefreshWatch()
    now = dt_util.utcnow()
    for sent in (0, 40, 90):
        refreshed = reading(now, sent=sent, expires=sent + 50, interval=60)
        watch.observe("s", refreshed, now + timedelta(seconds=sent))
    assert watch.timer("s") == timedelta(seconds=10)
    failed = reading(
        now,
        state=RegistrationState.REGISTER_TIMEOUT,
        sent=130,
        expires=None,
        interval=60,
    )
    watch.observe("s", failed, now + timedelta(seconds=165))
    assert watch.next_attempt("s") == now + timedelta(seconds=210)


def test_the_watch_learns_which_two_ticks_refreshes_come_at() -> None:
    """After two refreshes that fit one pair of ticks, two looks a refresh, not four.

    The API here shows registration_t_out (T + E - TI) and OpenSIPS 4.x
    refreshes at `expires` - TI or at `expires`: the tick 2 TI before is never
    the one, nor the tick after. An odd refresh teaches nothing; refreshes
    that no pair fits bring all four ticks back until they age out.
    """
    watch = RefreshWatch()
    now = dt_util.utcnow()
    agent = watch._agents
    hour, second = 3600, timedelta(seconds=1)

    def refresh(agent_id: str, at: int, t_out: int) -> None:
        """Show the agent registered with `expires` at t_out, then refreshed at `at`."""
        watch.observe(agent_id, reading(now, sent=0, expires=t_out), now)
        watch.observe(
            agent_id,
            reading(now, sent=at, expires=at + hour - 100),
            now + timedelta(seconds=at + 4),
        )

    assert watch.window == (-2, 1)
    # Planned before anything was learned: from `expires` - 2 TI.
    seen = reading(now, sent=0, expires=3500)
    watch.observe("z", seen, now)
    assert agent["z"].planned == now + timedelta(seconds=3304)
    refresh("a", 3400, 3500)  # at `expires` - TI: fits two pairs
    assert watch.window == (-2, 1)  # one refresh is not enough
    refresh("b", 3500, 3500)  # at `expires`: only (-1, 0) fits both
    assert watch.window == (-1, 0)
    # The same reading again plans anew from what was learned.
    watch.observe("z", seen, now)
    assert agent["z"].planned == now + timedelta(seconds=3404)
    # A new agent: its first look is at `expires` - TI, its last at `expires`.
    watch.observe("c", reading(now, sent=0, expires=3500), now)
    assert watch.refresh_due("c") == now + timedelta(seconds=3400)
    assert agent["c"].planned == now + timedelta(seconds=3404)
    watch.observe(
        "c", reading(now, sent=0, expires=3500), now + timedelta(seconds=3404)
    )
    assert agent["c"].planned == now + timedelta(seconds=3504)
    watch.observe(
        "c", reading(now, sent=0, expires=3500), now + timedelta(seconds=3504)
    )
    assert agent["c"].planned is None  # the tick after `expires` is never it
    # A REGISTER off the ticks (37 s after one) teaches nothing, nor one a
    # refresh later (the one between not seen), nor a refresh with no
    # `expires` shown before it.
    refresh("d", 3437, 3500)
    refresh("h", 6900, 3500)
    watch.observe("g", reading(now, sent=0, expires=None), now)
    watch.observe("g", reading(now, sent=3600, expires=None), now + hour * second)
    assert watch.window == (-1, 0)
    # A refresh a TI after `expires` fits no pair with the others: all four.
    refresh("e", 3600, 3500)
    assert watch.window == (-2, 1)
    watch.observe("f", reading(now, sent=0, expires=3500), now)
    assert watch.refresh_due("f") == now + timedelta(seconds=3300)
    # Until it is one of the last 8 refreshes no more (nor the others of
    # another pair): 8 at `expires` - TI narrow it again, 7 do not.
    for n in range(8):
        assert watch.window == (-2, 1)
        refresh(f"k{n}", 3400, 3500)
    assert watch.window == (-2, 0)


def test_an_unchanged_reading_plans_what_planning_again_would() -> None:
    """The shortcut for a reading seen before changes no plan.

    Two watches get the same random readings, looks and retries around two
    refreshes: one the very status objects (as the client hands back an
    unchanged answer), the other equal copies, which it plans from scratch.
    The refreshes seen teach both where refreshes land as they go.
    """
    rng = random.Random(19)  # noqa: S311  # a fixed scenario
    now = dt_util.utcnow()
    shortcut, planned_again = RefreshWatch(), RefreshWatch()
    registered, registering, failed = (
        RegistrationState.REGISTERED,
        RegistrationState.REGISTERING,
        RegistrationState.WRONG_CREDENTIALS,
    )
    pools = {
        agent_id: [
            reading(now, state=registered, sent=0, expires=3500),
            reading(now, state=registering, sent=3400, expires=3500),
            reading(now, state=registered, sent=3400 + late, expires=6900 + late),
            reading(now, state=failed, sent=3500, expires=7000),
            reading(now, state=registered, sent=6800 + late, expires=10_300),
        ]
        for agent_id, late in (("a", 0), ("b", 100), ("c", 0))
    }
    # Most readings repeat the agent's last one, as most polls do.
    last = {agent_id: pool[0] for agent_id, pool in pools.items()}
    at = now + timedelta(seconds=3000)
    for _ in range(2000):
        at += timedelta(seconds=rng.choice((1, 2, 3, 5, 8)))
        agent_id = rng.choice("abc")
        action = rng.random()
        if action < 0.8:
            if rng.random() < 0.2:
                last[agent_id] = rng.choice(pools[agent_id])
            status = last[agent_id]
            shortcut.observe(agent_id, status, at)
            planned_again.observe(agent_id, dataclasses.replace(status), at)
        elif action < 0.9:
            shortcut.retry(agent_id, at)
            planned_again.retry(agent_id, at)
        else:
            shortcut.taken(agent_id)
            planned_again.taken(agent_id)
        if agent_id not in shortcut._agents:
            continue  # a look or retry before the agent's first reading
        one, other = shortcut._agents[agent_id], planned_again._agents[agent_id]
        assert (one.planned, one.refresh_from, one.next_attempt) == (
            other.planned,
            other.refresh_from,
            other.next_attempt,
        )
        assert shortcut.window == planned_again.window


async def test_without_the_watch_the_next_attempt_assumes_the_default_timer(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """With the watch off, Next registration attempt still says when OpenSIPS retries."""
    _, model = await setup_simulated(hass, fake, fake_url, freezer, watch=False)
    model.set_behaviour(fake.agents[FRONT_DESK], "errors", time.time())
    await run_for(hass, freezer, seconds_until_refresh(model) + 60)
    assert hass.states.get(REGISTERED).state == STATE_OFF
    retry = model.next_tick(model.registration_t_out - 0.001)  # type: ignore[operator]
    assert dt_util.parse_datetime(
        hass.states.get(NEXT_ATTEMPT).state
    ) == datetime.fromtimestamp(retry, UTC)


async def test_a_failed_look_is_tried_again_and_the_others_are_read(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A look the API fails for one agent is tried again, 3 times at most.

    A refresh may be pending behind the failure: the next look comes after a
    SIP transaction's timeout. A look only looks: the reading stands (the
    interval reads report failures), and the other agents are not affected.
    """
    entry, model = await setup_simulated(hass, fake, fake_url, freezer, sales=True)
    coordinator = entry.runtime_data
    await run_for(hass, freezer, seconds_until_refresh(model) - 1)
    fake.inject(STATUS, FRONT_DESK, status=500, times=1)
    await run_for(hass, freezer, 5)
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(SALES).state == STATE_ON
    assert coordinator.last_update_success
    watch = coordinator.watch._agents[FRONT_DESK]
    assert watch.probes == 1
    looks = coordinator.watch.polls
    await run_for(hass, freezer, 34)
    assert coordinator.watch.polls > looks  # looked again
    assert hass.states.get(REGISTERED).state == STATE_ON


async def start_an_outage(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Set up two agents, read them, then take the API down until they are unavailable."""
    await setup_simulated(hass, fake, fake_url, freezer, sales=True)
    await run_for(hass, freezer, 60)
    fake.inject(STATUS, status=503)
    await run_for(hass, freezer, 61)
    assert hass.states.get(REGISTERED).state == STATE_UNAVAILABLE


async def test_an_outage_is_probed_then_every_agent_is_read(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """During an outage every 15 s one agent, then a second, asks whether it is back.

    (One agent can fail on its own.) When it is, every agent is read in that
    step, so that all entities come back together rather than one interval
    later.
    """
    await start_an_outage(hass, fake, fake_url, freezer)
    fake.reset_stats()
    await run_for(hass, freezer, 120)
    # Two requests every 15 s ask whether the API is back.
    assert 2 * (120 / 15 - 1) <= fake.stats.requests[STATUS] <= 2 * (120 / 15 + 1)
    fake.clear_faults()
    fake.reset_stats()
    await run_for(hass, freezer, 16)
    assert fake.stats.requests[STATUS] >= 2
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(SALES).state == STATE_ON


async def test_an_agent_failing_alone_does_not_prolong_an_outage(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The API is back, but the agent asked first fails on its own: a second answers.

    Every agent is read again at that probe, not 15 s later: the one that
    failed too, which answers this time.
    """
    await start_an_outage(hass, fake, fake_url, freezer)
    fake.clear_faults()
    fake.inject(STATUS, status=500, times=1)
    fake.reset_stats()
    for _ in range(16):
        await run_for(hass, freezer, 1)
        if fake.stats.requests[STATUS]:
            break
    assert fake.stats.responses[STATUS, 500] == 1
    # The probe that failed, the one that answered, then the first again.
    assert fake.stats.requests[STATUS] == 3
    assert hass.states.get(REGISTERED).state == STATE_ON
    assert hass.states.get(SALES).state == STATE_ON


async def test_a_429_without_the_watch_keeps_a_reading_its_interval_only(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """With the watch off, nothing predicts the refresh: past its interval, unavailable.

    The rate limit still holds every request until Retry-After ends.
    """
    await setup_simulated(hass, fake, fake_url, freezer, watch=False)
    fake.inject(STATUS, status=429, retry_after="120", times=1)
    await run_for(hass, freezer, 61)
    assert hass.states.get(REGISTERED).state == STATE_ON
    fake.reset_stats()
    await run_for(hass, freezer, 100)
    assert fake.stats.requests[STATUS] == 0
    assert hass.states.get(REGISTERED).state == STATE_UNAVAILABLE
    await run_for(hass, freezer, 30)
    assert hass.states.get(REGISTERED).state == STATE_ON
