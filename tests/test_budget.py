"""The request budget: what it holds back and what it learns, request by request.

Outside Home Assistant, as the client is; the clock is moved by hand.
"""

from email.utils import formatdate
import time

import pytest

from custom_components.telzino.api import RequestBudget, TelzinoRateLimitedError
from scripts.fake_telzino import RateLimit
from tests.common import FakeClock

pytestmark = pytest.mark.ha_free


def spend(budget: RequestBudget, clock: FakeClock, count: int, every: float) -> None:
    """Record `count` accepted requests, `every` seconds apart."""
    for _ in range(count):
        budget.check()
        budget.record(200, {})
        clock.advance(every)


def reload(budget: RequestBudget, clock: FakeClock) -> RequestBudget:
    """Return the budget a reload starts from: what `budget` learned, restored."""
    after = RequestBudget(clock)
    after.restore(budget.learned())
    return after


def send_at_the_pace(
    limit: RateLimit,
    lessons: int = 2,
    *,
    start: tuple[FakeClock, RequestBudget] | None = None,
) -> RequestBudget:
    """Send as fast as the pace allows (bursts of 5) until the `lessons`th 429; return the budget.

    From a fresh budget, or from `start` (a clock and the budget it drives);
    for a simulated day at most.
    """
    clock, budget = start or (FakeClock(), None)
    budget = budget or RequestBudget(clock)
    until = clock.now + 86400
    credit = 0.0
    while budget.rate_limited < lessons and clock.now < until:
        if budget.blocked_for() > 0:
            clock.advance(0.1)
            continue
        credit = min(credit + 0.1 * (budget.pace() or 10.0), 5.0)
        while credit >= 1 and budget.rate_limited < lessons:
            admitted, headers = limit.admit(clock.now)
            budget.record(200 if admitted else 429, headers)
            credit -= 1
        clock.advance(0.1)
    return budget


def told_twice(
    burst: int, first_wait: int, count: int, every: float, wait: int
) -> tuple[FakeClock, RequestBudget]:
    """Return a budget whose first burst met a 429 told `first_wait` s, then `count` more one told `wait`.

    The `count` requests go `every` seconds apart.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    spend(budget, clock, burst, 0.0)
    budget.record(429, {"Retry-After": str(first_wait)})
    clock.advance(first_wait)
    spend(budget, clock, count, every)
    budget.record(429, {"Retry-After": str(wait)})
    return clock, budget


def learned_from_20_in_30_s() -> tuple[FakeClock, RequestBudget, float]:
    """Return a budget that learned its rate: 20 accepted, then a 10 s wait.

    A first burst, and then 20 requests at the pace it gave, first met a 429.
    """
    clock, budget = told_twice(5, 10, 20, 1.0, 10)
    assert budget.limit_rate == pytest.approx(20 / 30)
    return clock, budget, budget.limit_rate


def test_nothing_known_nothing_held() -> None:
    """Until the API shows a limit, nothing is paced and nothing is held."""
    clock = FakeClock()
    budget = RequestBudget(clock)
    spend(budget, clock, 50, 0.1)
    assert budget.pace() is None
    assert budget.sustained() is None
    assert budget.blocked_for() == 0
    assert budget.sent == 50


def test_a_429_holds_until_retry_after_and_teaches_the_rate() -> None:
    """100 accepted in a minute after a 1 s wait, then a 429 for 30 s: the rate learned.

    Both samples ended with the API's wait, so the rate counts both: 105 in 61 s.
    """
    clock, budget = told_twice(5, 1, 100, 0.3, 30)
    with pytest.raises(TelzinoRateLimitedError) as raised:
        budget.check()
    assert raised.value.retry_after == pytest.approx(30)
    # Answers to requests already in flight change neither block nor lesson.
    budget.record(429, {})
    assert budget.blocked_for() == pytest.approx(30)
    assert budget.source == "429s"
    assert not budget.announced
    # Nothing says what a learned window has left: nothing goes beyond the pace.
    assert budget.room() == 0
    # 100 requests between the first one and the end of the block (60 s), and
    # the 5 of the second before.
    assert budget.limit_rate == pytest.approx(105 / 61)
    # Not a moment sooner than the wait ends.
    clock.advance(29.9)
    with pytest.raises(TelzinoRateLimitedError):
        budget.check()
    clock.advance(0.1)
    budget.check()
    # Then it probes upwards: 1 % after 10 minutes in use without a 429,
    # 2 % after the next 10, each step twice the last.
    before = budget.pace()
    assert before == pytest.approx(105 / 61 * 0.96)
    spend(budget, clock, round(1201 * before), 1 / before)
    assert budget.pace() == pytest.approx(before * 1.01 * 1.02)
    # A rate not in use (the requests needed fewer) is not raised.
    clock.advance(1200)
    spend(budget, clock, 2, 1.0)
    assert budget.pace() == pytest.approx(before * 1.01 * 1.02)


def test_a_runs_first_429_teaches_nothing_when_a_rate_is_known() -> None:
    """After a reload, the first 429 holds but leaves the rate learned before it.

    The window it met also held what the run before the reload sent: 10
    accepted in 40 s says nothing of the 1 a second learned. The next 429,
    counted from the end of that wait, teaches the rate.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    budget.restore({"source": "429s", "limit_rate": 1.0})
    spend(budget, clock, 10, 3.0)
    budget.record(429, {"Retry-After": "10"})
    assert budget.blocked_for() == pytest.approx(10)
    assert budget.limit_rate == 1.0
    clock.advance(10)
    spend(budget, clock, 60, 1.0)
    budget.record(429, {"Retry-After": "10"})
    assert budget.limit_rate == pytest.approx(60 / 70)


def test_few_requests_teach_what_the_api_accepts() -> None:
    """429 after 429 on a few requests each: the rate comes down to what was accepted.

    Two requests every 11 s meet a 429 each time (the API's window takes
    two): a rate set at 0.67 comes down to the 2 in 11 s they show, and
    stays there.
    """
    clock, budget, _ = learned_from_20_in_30_s()
    for _ in range(30):
        clock.advance(10)
        spend(budget, clock, 2, 0.5)
        budget.record(429, {"Retry-After": "1"})
    assert budget.limit_rate == pytest.approx(2 / 11)


@pytest.mark.parametrize("reloaded", [False, True], ids=["", "across a reload"])
def test_a_first_burst_learns_a_rate_then_probes_fast(reloaded: bool) -> None:
    """A first burst meets a 429 without Retry-After: a low rate, doubled every 30 s in use.

    How fast the limit refills is not known, only that it refilled within
    the 30 s waited; the rate grows until the next 429 corrects it, so that
    it is back near the limit within minutes, also when the options are
    saved (a reload) after the burst. It grows only while the requests use
    it: a rate they never reached says nothing of the limit.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    spend(budget, clock, 5, 0.0)
    budget.record(429, {})
    assert budget.limit_rate == pytest.approx(5 / 30)
    clock.advance(30)
    if reloaded:
        budget = reload(budget, clock)
    start = budget.pace()
    assert start is not None
    for _ in range(5):
        pace = budget.pace()
        assert pace is not None
        spend(budget, clock, round(30 * pace) + 1, 1 / pace)
    assert budget.pace() == pytest.approx(start * 2**5)
    # Requests that keep to 1 a second leave the rate where they are.
    spend(budget, clock, 300, 1.0)
    assert budget.pace() == pytest.approx(start * 2**5)


@pytest.mark.parametrize("reloaded", [False, True], ids=["", "across a reload"])
def test_a_fast_probe_holds_each_level_as_long_as_the_window_took_to_refill(
    reloaded: bool,
) -> None:
    """A first burst's window still refuses after 30 s and 60 s: each level holds 210 s.

    It was found refilled only after waits of 30, 60 and 120 s: a rate held
    for less says nothing of that window (a doubling every 30 s would spend
    it again at once), across a reload too.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    spend(budget, clock, 5, 0.0)
    budget.record(429, {})
    for wait in (30, 60):
        clock.advance(wait)
        budget.record(429, {})
    clock.advance(120)
    budget.record(200, {})
    if reloaded:
        budget = reload(budget, clock)
    start = budget.pace()
    assert start is not None
    spend(budget, clock, round(200 * start), 1 / start)
    assert budget.pace() == pytest.approx(start)
    spend(budget, clock, round(100 * start), 1 / start)
    assert budget.pace() == pytest.approx(2 * start)


@pytest.mark.parametrize(
    "limit",
    [
        RateLimit("fixed_window", 5, 1.0, retry_after=False),
        RateLimit("sliding_window", 25, 10.0, retry_after=False),
    ],
    ids=["5/s fixed", "25/10 s sliding"],
)
def test_a_fast_probe_that_meets_a_bare_429_takes_the_middle_of_its_last_doubling(
    limit: RateLimit,
) -> None:
    """A probe that doubles past the limit meets a bare 429: a rate under it, by √2 at most.

    The limit lies between the level that held and the one that met the
    429: the rate is their geometric middle. What the whole ramp accepted is
    what the probe sent, and what the last doubling accepted before the 429
    is only its pace (a window of 10 s refuses it 6 s in): neither is what
    the API allows.
    """
    budget = send_at_the_pace(limit)
    assert budget.limit_rate is not None
    assert limit.rate / 2**0.5 <= budget.limit_rate <= limit.rate


def test_a_first_window_cut_short_is_corrected_by_the_windows_after() -> None:
    """5 per 10 minutes told by Retry-After, the run starting 200 s before a window ends.

    The first burst's 5 in 200 s is three times the limit. The next
    window's lesson counts that sample with its own (10 in 800 s), so it
    is still high, but at most twice the limit; the one after counts two
    whole windows: 5 in 600 s.
    """
    limit = 5 / 600
    after_two = send_at_the_pace(RateLimit("fixed_window", 5, 600.0))
    assert after_two.limit_rate == pytest.approx(10 / 800, rel=0.01)
    after_three = send_at_the_pace(RateLimit("fixed_window", 5, 600.0), lessons=3)
    assert after_three.limit_rate == pytest.approx(limit, rel=0.01)


@pytest.mark.parametrize(
    ("requests", "share"),
    [(1, 0.7), (20, 0.96)],
    ids=["a request: cut 30 %", "20 requests: the pace they show"],
)
def test_a_rate_that_meets_a_bare_429_again_before_it_was_raised(
    requests: int, share: float
) -> None:
    """Taught by a bare 429, met by the next before the probe raised it: cut after a request or two.

    After the wait chosen here, one request is accepted and the next, at the
    pace, refused. That sample (1 in one interval of the pace) shows the
    pace, not the limit: taken as the rate, it would come down 4 % a 429;
    it is cut 30 %. 20 requests show what the API accepted over their span
    (behind a small sliding window, an hourly agent list's pages can meet
    it at the pace): the rate they show.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    budget.restore({"source": "429s", "limit_rate": 1.0})
    spend(budget, clock, 10, 1.0)
    # The run's first 429 holds and teaches nothing; the next one teaches.
    budget.record(429, {})
    clock.advance(budget.blocked_for())
    spend(budget, clock, 20, 1.0)
    budget.record(429, {})
    taught = budget.limit_rate
    assert taught == pytest.approx(1.0)
    clock.advance(budget.blocked_for())
    pace = budget.pace()
    assert pace is not None
    spend(budget, clock, requests, 1 / pace)
    budget.record(429, {})
    assert budget.limit_rate == pytest.approx(share * taught)


def test_a_rate_learned_too_low_is_probed_back_to_the_limit_within_an_hour() -> None:
    """Learned at two thirds of 1 a second (told by Retry-After): the limit again within an hour.

    The probe's step doubles every 10 minutes in use (1 %, 2 %, 4 % ...), so
    the rate is back at the limit after six steps. The 429 that ends the
    probe teaches what the last step met, not the average of the ramp below
    (under the limit); at most a window over it, which the next 429 corrects.
    """
    clock, budget, learned = learned_from_20_in_30_s()
    began = clock.now
    limit = RateLimit("fixed_window", 10, 10.0)
    send_at_the_pace(limit, lessons=3, start=(clock, budget))
    assert budget.rate_limited == 3
    assert clock.now - began <= 3700
    assert learned < 0.7 * limit.rate
    assert 0.9 * limit.rate <= budget.limit_rate <= 1.1 * limit.rate


@pytest.mark.parametrize(
    "first_answer",
    [{"Retry-After": "1"}, {}],
    ids=["its wait told (1 s)", "a bare 429 (30 s chosen here)"],
)
def test_a_window_that_began_before_the_last_wait_is_counted_whole(
    first_answer: dict[str, str],
) -> None:
    """Two limits: a first burst meets one, then the minute after meets a window.

    A first burst of 1,700 meets a limit per second; 200 more over the next
    minute meet a window of 1,900 per 10 minutes that began with the burst,
    told by Retry-After. Counted from the end of the first wait, that is 200
    in 9 minutes or so, a ninth of what the window allows, and the reads
    would stay there for hours; with the sample before it (the wait between
    them sent nothing), the window is counted whole: 1,900 in 600 s.
    """
    clock = FakeClock()
    start = clock.now
    budget = RequestBudget(clock)
    spend(budget, clock, 1700, 0.0)
    budget.record(429, first_answer)
    clock.advance(budget.blocked_for())
    spend(budget, clock, 200, 0.3)
    budget.record(429, {"Retry-After": f"{start + 600 - clock.now:.1f}"})
    assert budget.limit_rate == pytest.approx(1900 / 600, rel=0.001)


@pytest.mark.parametrize(
    ("gap", "learned_after"),
    [(0.0, None), (2.0, 15 / 20)],
    ids=["with the pages: nothing learned", "2 s after them: learned"],
)
def test_a_bare_429_to_a_read_sent_with_the_agent_lists_pages_teaches_nothing(
    gap: float, learned_after: float | None
) -> None:
    """The list's pages and a read go at once and meet a bare 429: the rate stays.

    The read shares the pages' burst (a window of a second or so refused
    it), which says nothing of the rate the pace keeps. Sent on its own
    after the burst, the same 429 teaches: 15 accepted in 20 s.
    """
    clock, budget, learned = learned_from_20_in_30_s()
    clock.advance(10)
    spend(budget, clock, 12, 1.5)
    for _ in range(3):
        budget.record(200, {}, learn=False)
    clock.advance(gap)
    budget.record(429, {})
    assert budget.blocked_for() == pytest.approx(30)
    assert budget.limit_rate == pytest.approx(learned_after or learned)


@pytest.mark.parametrize(
    ("headers", "wait", "learned_after"),
    [({"Retry-After": "2"}, 2, 23 / 32.3), ({}, 30, 20 / 30)],
    ids=["the API's wait: the sample goes on", "a wait chosen here: it starts again"],
)
def test_a_429_on_a_request_not_sent_at_the_pace_holds_but_teaches_nothing(
    headers: dict[str, str], wait: float, learned_after: float
) -> None:
    """A burst of agent-list pages meets a 429: it holds, the rate stays.

    The next lesson counts what was accepted since, through the API's own
    wait; a wait chosen here (no Retry-After) is not the API's: counted
    through it, 23 in 60 s would teach 0.38 a second where the API accepted
    20 in 30 s.
    """
    clock, budget, learned = learned_from_20_in_30_s()
    clock.advance(10)
    spend(budget, clock, 3, 0.1)
    budget.record(429, headers, learn=False)
    assert budget.blocked_for() == pytest.approx(wait)
    assert budget.limit_rate == learned
    clock.advance(wait)
    spend(budget, clock, 20, 1.0)
    budget.record(429, {"Retry-After": "10"})
    assert budget.limit_rate == pytest.approx(learned_after)


def test_a_window_found_refilled_starts_the_sample_at_its_first_request() -> None:
    """A window that refuses for a while, then takes 10 in 10 s: 1 a second is learned.

    The waits chosen here end in refusals (nothing accepted), and the window
    refilled at some moment in the 60 s before the first request it accepted.
    Counting from earlier (halfway: 10 in 40 s) would teach a quarter of
    what the API just accepted, and a rate too low lasts: the probe raises it
    by 1 % after 10 minutes. Too high, the next 429 corrects it.
    """
    clock, budget, _ = learned_from_20_in_30_s()
    clock.advance(10)
    budget.record(429, {})
    clock.advance(30)
    budget.record(429, {})
    clock.advance(60)
    spend(budget, clock, 10, 1.0)
    budget.record(429, {})
    assert budget.limit_rate == pytest.approx(10 / 10)


def spent_then_refused(budget: RequestBudget, clock: FakeClock, accepted: int) -> None:
    """Spend a window: `accepted` requests 1 s apart, a bare 429, then refused after 30 and 60 s."""
    spend(budget, clock, accepted, 1.0)
    budget.record(429, {})
    for _ in range(2):
        clock.advance(budget.blocked_for())
        budget.record(429, {})


@pytest.mark.parametrize("reloaded", [False, True], ids=["", "across a reload"])
def test_a_window_found_refilled_caps_the_rate_at_what_it_held(reloaded: bool) -> None:
    """120 accepted between two windows found refilled an hour apart: 120 in 57 minutes at most.

    A bare 429 shows how fast the requests went, not how long the window
    they spent lasts. Refused after the waits chosen here (30 s, 60 s), the
    window was spent until some moment between the last refusal and the
    first request accepted 2 minutes later. The first window found refilled
    only starts the count (the window may have held requests sent before the
    run: 5 here); the next one caps the rate at what was accepted over the
    shortest time the window can have lasted: from the first request
    accepted after the refill before to the last refusal (3,420 s). It rests
    on a whole window: probed upwards slowly, not doubled. A reload while
    the window refuses loses none of it.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    spent_then_refused(budget, clock, 5)
    clock.advance(budget.blocked_for())
    budget.record(200, {})
    # The first burst's (5 until its wait ended): the rate stands.
    assert budget.limit_rate == pytest.approx(5 / 35)
    accepted_at = clock.now
    spent_then_refused(budget, clock, 119)
    if reloaded:
        budget = reload(budget, clock)
    # Refused 2 minutes before the hour, accepted 2 minutes after.
    clock.advance(accepted_at + 3420 - clock.now)
    budget.record(429, {})
    clock.advance(240)
    budget.record(200, {})
    assert budget.limit_rate == pytest.approx(120 / 3420, rel=1e-3)
    # Two minutes in use at the pace: not doubled.
    pace = budget.pace()
    assert pace is not None
    spend(budget, clock, 5, 1 / pace)
    assert budget.pace() == pytest.approx(pace)


def test_without_retry_after_the_wait_doubles_from_30_s_up_to_10_minutes() -> None:
    """No Retry-After and no headers: 30 s, 60 s, 120 s ... 10 minutes; a success starts over."""
    clock = FakeClock()
    budget = RequestBudget(clock)
    for wait in (30, 60, 120, 240, 480, 600, 600):
        budget.record(429, {})
        assert budget.blocked_for() == pytest.approx(wait)
        clock.advance(wait)
    # The first 429 had nothing to learn from: no rate is made up.
    assert budget.limit_rate is None
    budget.record(200, {})
    budget.record(429, {})
    assert budget.blocked_for() == pytest.approx(30)


@pytest.mark.parametrize(
    "headers",
    [
        {
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "400",
            "X-RateLimit-Reset": "3600",
        },
        {
            "RateLimit-Limit": "1000",
            "RateLimit-Remaining": "400",
            "RateLimit-Reset": "3600",
        },
        {
            "RateLimit-Policy": '"telzino";q=1000;w=3600',
            "RateLimit": '"telzino";r=400;t=3600',
        },
    ],
    ids=["x-ratelimit", "ietf draft", "ietf structured"],
)
def test_headers_give_the_budget(headers: dict[str, str]) -> None:
    """1,000 an hour, 400 left for the hour: planned at 98 %, and no faster than what is left.

    Less the 2 % of the window kept under its limit, which the looks keep
    too: they may take what is left at once.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    budget.record(200, headers)
    assert budget.source == "headers"
    assert budget.announced
    assert budget.window == 3600
    assert budget.sustained() == pytest.approx(1000 / 3600 * 0.98)
    assert budget.pace() == pytest.approx((400 - 20) / 3600)
    assert budget.room() == pytest.approx(400 - 20)
    # In the last second of the window, the long-run rate holds; once it
    # has reset, what it holds is not known until an answer tells.
    clock.advance(3599.5)
    assert budget.pace() == pytest.approx(1000 / 3600 * 0.98)
    clock.advance(1)
    assert budget.room() == 0


def hundred_a_minute() -> RateLimit:
    """Return a sliding window of 100 a minute, announced in X-RateLimit-*."""
    return RateLimit("sliding_window", 100, 60.0, headers="x-ratelimit")


def share_a_window(
    clock: FakeClock, limit: RateLimit, others: int, every: int, seconds: int
) -> list[float]:
    """Send one request every `every` s beside another client's `others` a minute.

    Return the rate a new budget planned with after each second.
    """
    budget = RequestBudget(clock)
    planned = []
    for second in range(seconds):
        if second % 3 == 0:
            for _ in range(others // 20):
                limit.admit(clock.now)
        if second % every == 0:
            budget.check()
            admitted, headers = limit.admit(clock.now)
            budget.record(200 if admitted else 429, headers)
        planned.append(budget.sustained() or 0.0)
        clock.advance(1)
    return planned


@pytest.mark.parametrize(
    ("others", "every", "left"), [(40, 2, 60), (80, 6, 50)], ids=["40", "80"]
)
def test_another_clients_use_of_an_announced_window_is_left_to_it(
    others: int, every: int, left: int
) -> None:
    """A second installation uses 40 of 100 a minute: this one plans with the 60 left.

    With 80 used, this one keeps half. Told apart after a window of this
    run: the rate planned is the whole limit's until then.
    """
    planned = share_a_window(FakeClock(), hundred_a_minute(), others, every, 180)
    assert planned[50] == pytest.approx(100 / 60 * 0.98)
    assert planned[-1] == pytest.approx(left / 60 * 0.98, rel=0.05)


def test_requests_refused_are_not_this_clients_share() -> None:
    """Another client used 4 of 6 a minute; of this one's 4 in flight, 2 are refused.

    The window holds 2 of this one's: 4 are the other's (capped at half).
    """
    clock = FakeClock()
    budget = RequestBudget(clock)

    def answer(status: int, remaining: int) -> None:
        budget.record(
            status,
            {
                "X-RateLimit-Limit": "6",
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": "60",
            },
        )

    answer(200, 5)
    budget.check()
    clock.advance(61)
    for _ in range(4):
        budget.check()
    for status, remaining in ((200, 1), (200, 0), (429, 0), (429, 0)):
        answer(status, remaining)
    assert budget.sustained() == pytest.approx((6 - 3) / 60 * 0.98)


def test_the_run_before_a_reload_is_not_another_client() -> None:
    """The window still holds 50 requests of the run before: they leave it, the limit stays whole."""
    clock, limit = FakeClock(), hundred_a_minute()
    for _ in range(50):
        limit.admit(clock.now)
    clock.advance(10)
    planned = share_a_window(clock, limit, 0, 2, 180)
    assert min(planned[1:]) >= 100 / 60 * 0.98 - 1e-9


def test_a_limit_without_a_remainder_is_planned_at_its_rate() -> None:
    """Limit and reset alone: the long-run rate, nothing held."""
    budget = RequestBudget(FakeClock())
    budget.record(200, {"X-RateLimit-Limit": "100", "X-RateLimit-Reset": "60"})
    assert budget.pace() == pytest.approx(100 / 60 * 0.98)
    assert budget.blocked_for() == 0


def test_a_spent_budget_holds_until_the_reset_without_a_429() -> None:
    """Remaining 0: nothing is sent until the reset; a Unix-time reset is read too."""
    clock = FakeClock()
    budget = RequestBudget(clock)
    budget.record(
        200,
        {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "40",
        },
    )
    assert budget.blocked_for() == pytest.approx(40)
    # A 429 without Retry-After waits for the announced reset.
    clock.advance(40)
    budget.record(429, {"X-RateLimit-Limit": "10", "X-RateLimit-Reset": "20"})
    assert budget.blocked_for() == pytest.approx(20)
    unix = RequestBudget(FakeClock())

    unix.record(
        200,
        {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "5",
            "X-RateLimit-Reset": str(int(time.time()) + 60),
        },
    )
    assert unix.window == pytest.approx(60, abs=2)


@pytest.mark.parametrize("server_ahead", [-600, 600], ids=["behind", "ahead"])
def test_a_unix_time_reset_is_read_on_the_servers_clock(server_ahead: int) -> None:
    """The API's clock is 10 minutes off this host's: a reset 40 s ahead on it is 40 s away.

    The reset is a time on the server's clock, as the answer's `Date` is.
    """
    clock = FakeClock()
    budget = RequestBudget(clock, wall=clock)
    server_now = clock.now + server_ahead
    budget.record(
        200,
        {
            "Date": formatdate(server_now, usegmt=True),
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(server_now) + 40),
        },
    )
    assert budget.blocked_for() == pytest.approx(40)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Limit": "many", "X-RateLimit-Reset": "60"},
        {"X-RateLimit-Limit": "inf", "X-RateLimit-Reset": "60"},
        {"X-RateLimit-Limit": "0", "X-RateLimit-Reset": "60"},
        {"X-RateLimit-Limit": "100"},
        {"RateLimit-Policy": "garbage"},
    ],
)
def test_unreadable_headers_are_ignored(headers: dict[str, str]) -> None:
    """Headers that say nothing usable teach nothing."""
    budget = RequestBudget(FakeClock())
    budget.record(200, headers)
    assert budget.source is None
    assert budget.pace() is None


def test_a_429_that_asks_for_no_wait_teaches_nothing() -> None:
    """The first answer, a 429 with Retry-After 0: no span to learn a rate from."""
    clock = FakeClock()
    budget = RequestBudget(clock)
    budget.record(429, {"Retry-After": "0"})
    assert budget.limit_rate is None
    assert budget.blocked_for() == 0
    budget.check()


def test_a_reload_carries_the_requests_counted_towards_the_next_estimate() -> None:
    """What the run before sent still fills the API's window: the sample goes on.

    42 sent in a burst, then the entry reloads and 18 more meet a 429 that
    waits 57 s: no rate was known, and the 60 in 60 s both runs sent show
    it, not the 18 of the new run alone.
    """
    clock = FakeClock()
    before = RequestBudget(clock)
    spend(before, clock, 42, 0.0)
    after = reload(before, clock)
    clock.advance(3)
    spend(after, clock, 18, 0.0)
    after.record(429, {"Retry-After": "57"})
    # (Wall-clock time moves between the two runs: a microsecond or so.)
    assert after.limit_rate == pytest.approx(60 / 60, rel=1e-3)


def test_a_reload_during_a_wait_counts_the_next_sample_from_its_end() -> None:
    """Saved while the API asked to wait: the next 429 teaches, as it would have.

    A first burst's 5 in 10 s, then the entry reloads during the wait; 20
    sent at 1 a second after it meet a 429 that waits 10 s: 20 in 30 s.
    """
    clock = FakeClock()
    before = RequestBudget(clock)
    spend(before, clock, 5, 0.0)
    before.record(429, {"Retry-After": "10"})
    assert before.limit_rate == pytest.approx(5 / 10)
    clock.advance(2)
    after = reload(before, clock)
    assert after.blocked_for() == pytest.approx(8, abs=0.01)
    clock.advance(8)
    spend(after, clock, 20, 1.0)
    after.record(429, {"Retry-After": "10"})
    assert after.limit_rate == pytest.approx(20 / 30, rel=1e-3)


def test_a_stored_wait_is_kept_for_10_minutes_at_most() -> None:
    """A restart during a wait of an hour holds requests for 10 minutes, not the hour.

    The wait's end is stored as a wall-clock time; a clock set back while
    Home Assistant was stopped, or a Retry-After of hours, would otherwise
    keep every agent unread that long. The API's next answer tells again.
    """
    clock = FakeClock()
    before = RequestBudget(clock)
    spend(before, clock, 5, 0.0)
    before.record(429, {"Retry-After": "3600"})
    after = reload(before, clock)
    assert after.blocked_for() == pytest.approx(600, abs=0.01)


@pytest.mark.parametrize(
    "counted",
    [
        {"accepted": True},
        {"accepted": -1},
        {"accepted": "42"},
        {"counting_since": None},
        {"counted_until": "now"},
        {"counting_since": time.time() + 3600},
        {"counted_until": time.time() + 3600},
    ],
)
def test_a_stored_sample_that_cannot_be_read_is_not_carried(
    counted: dict[str, object],
) -> None:
    """A stored count that is junk, or from the future, is ignored: the count starts anew."""
    clock = FakeClock()
    budget = RequestBudget(clock)
    now = time.time()
    budget.restore(
        {"accepted": 42, "counting_since": now - 3, "counted_until": now} | counted
    )
    spend(budget, clock, 18, 0.0)
    budget.record(429, {"Retry-After": "57"})
    assert budget.limit_rate == pytest.approx(18 / 57)


@pytest.mark.parametrize(
    ("stored", "revised"),
    [
        ({}, True),
        ({"cycle": None}, False),
        ({"cycle": "60"}, False),
        ({"cycle": [60]}, False),
        ({"cycle": [True, time.time() - 200]}, False),
        ({"cycle": [-1, time.time() - 200]}, False),
        ({"cycle": [60, "then"]}, False),
        ({"cycle": [60, time.time() + 3600]}, False),
        ({"refused_at": None}, False),
        ({"refused_at": time.time() + 3600}, False),
        # Not junk: 600 in 180 s is more than the rate in use, which stands.
        ({"cycle": [600, time.time() - 200]}, False),
    ],
)
def test_a_stored_cycle_that_cannot_be_read_is_not_carried(
    stored: dict[str, object], revised: bool
) -> None:
    """A window refusing before a restart: what it held is carried, unless it is junk.

    Stored: 60 accepted from 200 s before the restart, refused 20 s before
    it. The first request accepted after it finds the window refilled: 60
    in 180 s at most. A stored count or time that is junk, or from the
    future, is ignored, and the rate stands.
    """
    clock = FakeClock()
    budget = RequestBudget(clock)
    now = time.time()
    learned = {
        "source": "429s",
        "limit_rate": 1.0,
        "accepted": 0,
        "counting_since": now - 30,
        "counted_until": now,
        "cycle": [60, now - 200],
        "refused_at": now - 20,
    }
    budget.restore(learned | stored)
    budget.record(200, {})
    expected = 60 / 180 if revised else 1.0
    assert budget.limit_rate == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    ("stored", "period"),
    [
        ({"fast_period": 210.0}, 210),
        # Within the first wait and a slow probe's period.
        ({"fast_period": 5.0}, 30),
        ({"fast_period": 10**9}, 600),
        # Junk: the first wait's.
        ({"fast_period": "210"}, 30),
        ({"fast_period": None}, 30),
        ({"fast_period": True}, 30),
    ],
)
def test_a_restored_fast_probe_holds_each_level_as_long_as_stored(
    stored: dict[str, object], period: int
) -> None:
    """After a restart, a fast probe holds each level as long as the window took to refill."""
    clock = FakeClock()
    budget = RequestBudget(clock)
    budget.restore({"source": "429s", "limit_rate": 1.0, "fast_probe": True} | stored)
    start = budget.pace()
    assert start is not None
    spend(budget, clock, round((period - 5) * start), 1 / start)
    assert budget.pace() == pytest.approx(start)
    spend(budget, clock, round(10 * start), 1 / start)
    assert budget.pace() == pytest.approx(2 * start)


def test_a_429_the_moment_a_wait_ends_teaches_nothing() -> None:
    """No Retry-After, on the first request after a wait: no span to learn from; the wait doubles."""
    clock, budget, learned = learned_from_20_in_30_s()
    clock.advance(10)
    budget.record(429, {})
    assert budget.limit_rate == learned
    assert budget.blocked_for() == pytest.approx(30)
