"""The request budget: what the API lets one account send, learned from its answers.

Telzino rate limits its API without publishing the limits. Every request of
the client (token, agent list, status) passes `check` before it is sent and
`record` with its answer. What the budget guarantees:

- nothing is sent before the API's wait ends: its `Retry-After`, a window its
  rate-limit headers announce as spent, or (after a bare 429) a wait chosen
  here, 30 s doubling up to 10 minutes;
- `pace` is the rate to plan with (None until the API shows a limit): the
  limit its headers announce (`X-RateLimit-*`, the IETF `RateLimit` and
  `RateLimit-Policy` fields, or `RateLimit-Limit/-Remaining/-Reset`), or an
  estimate from the requests accepted between 429s; each just under it;
  with headers, what other clients of the account use of the announced
  window is left to them, up to half of it;
- an estimate is probed upwards while in use, each step twice the last, until
  a 429 corrects it: one that is too low does not last;
- what was learned (`learned`) survives a reload or restart (`restore`): the
  API's window still holds what the run before sent.

How a sample gives an estimate, and the 429s that teach nothing (a burst of
the agent list's pages, a run's first 429 with a rate known), is in
docs/how-it-works.md ("The request budget"), and at each rule below. The
budget decides nothing about what to read: the caller plans with `pace`.
"""

from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
import math
import re
import time
from typing import Any, Final, TypeIs

from .exceptions import TelzinoRateLimitedError
from .server_clock import answered_at, parse_http_date

# Requests are planned this far under a rate the API announced ...
HEADER_MARGIN: Final = 0.98
# ... and under a rate estimated from 429s (the estimate is a little high).
ESTIMATE_MARGIN: Final = 0.96
# Without headers, probe upwards by this share of the rate after a
# PROBE_PERIOD, twice that after the next, and so on until a 429; from an
# estimate that rests on little (see below), double it every time the
# window took to refill (its waits). Only a rate in use is raised: at least
# this share of it was accepted over the period.
PROBE_STEP: Final = 0.01
PROBE_PERIOD: Final = 600.0
IN_USE: Final = 0.5
# A rate that meets a bare 429 again before the probe raised it, in a
# sample of FEW requests at most, is cut to this share of itself, at least.
DECREASE: Final = 0.7
FEW: Final = 2
# Requests sent within this long of one not at the pace are part of its burst.
BURST_SPAN: Final = 1.0
# Without Retry-After or headers: wait this long after a 429, doubling up to
# BACKOFF_MAX, so that a long window spent early is found refilled within
# that of its reset. A stored wait is kept at most as long after a restart.
BACKOFF_START: Final = 30.0
BACKOFF_MAX: Final = 600.0
# X-RateLimit-Reset is sometimes a Unix time rather than seconds.
_UNIX_TIME_FROM: Final = 1e9
_FIELD_PARAM = re.compile(r";\s*([a-z]+)\s*=\s*([0-9.]+)")


class RequestBudget:
    """Gate and learner of one account's request budget (clock: monotonic seconds)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """Start knowing nothing: no limit until the API shows one.

        `wall`: the clock of what is stored (seconds since the epoch; the
        system's when None, read at each call so that a frozen test clock
        applies).
        """
        self._clock = clock
        self._wall = wall or (lambda: time.time())  # noqa: PLW0108  # late-bound
        self.blocked_until = -math.inf
        # Requests per second the API sustains; None until it shows a limit.
        self.limit_rate: float | None = None
        # Where the rate comes from: "headers", "429s" or None.
        self.source: str | None = None
        self.sent = 0
        self.rate_limited = 0
        # From headers: the window's size and what remains of it, until when.
        self.window: float | None = None
        self.remaining: int | None = None
        self.reset_at: float | None = None
        # With headers: when this run sent its requests of the last window,
        # and what other clients of the account use of it (per second).
        self._own: deque[float] = deque()
        self._own_since: float | None = None
        self.others_rate = 0.0
        self._accepted = 0
        self._counting_since: float | None = None
        # How far the probe raised the rate, since when it is at that level,
        # and what was accepted since.
        self._probe = 1.0
        self._probe_since = 0.0
        self._probe_accepted = 0
        self._probe_step = PROBE_STEP
        self._backoff = BACKOFF_START
        # Whether the requests counted are all the window holds: counted
        # from the end of a wait, not from this run's first request.
        self._counted_all = False
        self._fast_probe = False
        # How long a fast probe holds each level: the waits the window took
        # to refill, once it was found refilled.
        self._fast_period = BACKOFF_START
        # Whether the last 429 that came to `_learn_from_429` taught the rate in use.
        self._taught = False
        # What the sample had accepted when the probe last raised the rate, and when.
        self._raised: tuple[int, float] | None = None
        # The last sample a 429 ended: what it accepted, from when, and the
        # end of that 429's wait (where the next sample starts).
        self._last_sample: tuple[int, float, float] | None = None
        # The last refusal while nothing was accepted (the window was spent
        # then), and the last request sent in a burst not at the pace.
        self._refused_at: float | None = None
        self._unpaced_at = -math.inf
        # The requests accepted since a window was last found refilled after
        # refusals, and when (None: not yet).
        self._cycle: tuple[int, float] | None = None

    @property
    def announced(self) -> bool:
        """Whether the API announces the budget in headers (else 429s showed it, if anything)."""
        return self.source == "headers"

    def check(self) -> None:
        """Raise, sending nothing, while the API asked to wait."""
        now = self._clock()
        if (wait := self.blocked_until - now) > 0:
            raise TelzinoRateLimitedError(
                f"Held back: the API asked to wait {math.ceil(wait)} s more", wait
            )
        if self.source == "headers":
            # Counted when sent: the API counts a request in flight too.
            self._own.append(now)
            while self._own[0] <= now - (self.window or 1.0):
                self._own.popleft()
            if self._own_since is None:
                self._own_since = now

    def blocked_for(self) -> float:
        """Seconds until requests may be sent again (0 when they may now)."""
        return max(self.blocked_until - self._clock(), 0.0)

    def resets_in(self) -> float | None:
        """Seconds until the announced window refills (None: none announced ahead)."""
        if self.source != "headers" or self.reset_at is None:
            return None
        left = self.reset_at - self._clock()
        return left if left > 0 else None

    def record(
        self, status: int, headers: Mapping[str, str], *, learn: bool = True
    ) -> None:
        """Learn from one answer (its HTTP status and headers).

        `learn=False`: a request not sent at the pace (a page of the agent
        list, in a burst): its 429 holds like any other, but says nothing of
        the rate the pace can keep.
        """
        now = self._clock()
        self.sent += 1
        if status == 429 and self._own:
            # Refused: not in the API's window (as far as it counts those).
            self._own.pop()
        if not learn:
            self._unpaced_at = now
        self._raise_probe(now)
        if self._counting_since is None:
            self._counting_since = now
        announced = self._read_headers(headers, now)
        if status != 429:
            if not self._accepted and self._refused_at is not None:
                # The window refilled at some moment since the last refusal:
                # the sample starts with the first request it accepts. Taken
                # from earlier, it would teach less than the API now accepts.
                self._counting_since = max(self._counting_since, now)
                self._refilled(self._refused_at, now)
            self._refused_at = None
            self._accepted += 1
            self._probe_accepted += 1
            if self._cycle is not None:
                self._cycle = (self._cycle[0] + 1, self._cycle[1])
            if self._fast_probe and self._backoff > BACKOFF_START:
                # The waits since the last 429 let the window refill: a level
                # held that long held through a refill.
                self._fast_period = min(self._backoff - BACKOFF_START, PROBE_PERIOD)
            self._backoff = BACKOFF_START
            if self.remaining == 0 and self.reset_at is not None:
                # Spent: wait for the reset rather than for a 429.
                self.blocked_until = max(self.blocked_until, self.reset_at)
            return
        self.rate_limited += 1
        # A 429 while blocked answers a request sent before the block began.
        in_block = now < self.blocked_until
        if not self._accepted and not in_block:
            self._refused_at = now
        wait = retry_after(headers)
        if wait is None and announced and self.reset_at is not None:
            # Only this answer's own headers say when its window resets.
            wait = self.reset_at - now
        if wait is None and self.limit_rate and now - self._unpaced_at < BURST_SPAN:
            # Sent with a burst not at the pace (a window of a second or so
            # may have refused the burst): part of it.
            learn = False
        # The API's wait is part of the window's span; a wait chosen here is not.
        sample_end = None if wait is None else now + max(wait, 0.0)
        if wait is None:
            if in_block:
                # An answer to a request already in flight: the block stands.
                return
            wait = self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        until = now + max(wait, 0.0)
        self.blocked_until = max(self.blocked_until, until)
        if in_block:
            # More answers of requests already in flight: one lesson per block.
            return
        if not learn:
            # A request not sent at the pace: nothing to learn. A wait chosen
            # here after requests accepted says nothing of the API: the
            # sample starts again after it.
            if sample_end is None and self._accepted:
                self._new_sample(until)
            return
        since = self._counting_since
        if not announced:
            self._learn_from_429(
                since, now if sample_end is None else sample_end, until
            )
        # The next sample starts after this wait, unless nothing was accepted
        # since the last one: the window refused all along, and it goes on.
        if self._accepted or announced:
            self._last_sample = (
                None if since is None else (self._accepted, since, until)
            )
            self._new_sample(until)
        self._counted_all = True

    def _new_sample(self, since: float) -> None:
        """Count the requests accepted from `since` towards the next estimate."""
        self._accepted, self._counting_since = 0, since
        self._raised = None

    def pace(self) -> float | None:
        """Return the requests per second to plan with now; None when no limit is known."""
        rate = self.sustained()
        if rate is None or (window := self._announced()) is None:
            return rate
        remaining, left = window
        if left <= 1:
            return rate
        # Spend what remains evenly until the reset, no faster, less the
        # margin (what the looks may take at once keeps it too).
        return min(rate, max(remaining - self._kept(), 0) / left)

    def _raise_probe(self, now: float) -> None:
        """Raise a rate estimated from 429s at each period it was in use, each step twice the last."""
        period = self._fast_period if self._fast_probe else PROBE_PERIOD
        if self.source != "429s" or now - self._probe_since < period:
            return
        in_use = (self.sustained() or 0.0) * (now - self._probe_since)
        if self._probe_accepted >= IN_USE * in_use:
            self._probe *= 2 if self._fast_probe else 1 + self._probe_step
            self._probe_step *= 2
            if self._fast_probe:
                # The 429 that ends a fast probe tells what the last
                # doubling's requests met, not the average of the ramp below.
                self._new_sample(now)
            else:
                self._raised = (self._accepted, now)
        self._probe_since, self._probe_accepted = now, 0

    def spare(self) -> float:
        """Return the requests the window holds beyond its pace until its reset.

        They may go at once (a first round, for example) without slowing the
        requests that follow; only rate-limit headers tell.
        """
        if (window := self._announced()) is None:
            return 0.0
        remaining, left = window
        return max(remaining - left * (self.sustained() or 0.0), 0.0)

    def room(self) -> float:
        """Return the requests the API lets go at once now, beyond the pace.

        What the window announced as remaining, less the margin kept under
        its limit: sent at once, it slows the pace for the rest of the window
        (which spends what remains evenly).
        """
        if (window := self._announced()) is None:
            return 0.0
        return max(window[0] - self._kept(), 0.0)

    def _announced(self) -> tuple[int, float] | None:
        """Return what the announced window has left, and the seconds until its reset.

        None when the headers did not say, or the reset has passed (a window
        past its reset is not known to have refilled).
        """
        if self.remaining is None or (left := self.resets_in()) is None:
            return None
        return self.remaining, left

    def _kept(self) -> float:
        """Return the requests of an announced window kept under its limit."""
        return (self.limit_rate or 0.0) * (self.window or 1.0) * (1 - HEADER_MARGIN)

    def sustained(self) -> float | None:
        """Return the long-run rate planned with (no per-window correction), per second."""
        if self.limit_rate is None:
            return None
        if self.source == "headers":
            return (self.limit_rate - self.others_rate) * HEADER_MARGIN
        return self.limit_rate * ESTIMATE_MARGIN * self._probe

    def learned(self) -> dict[str, Any]:
        """Return what was learned, to start from after a restart (see `restore`).

        The wait the API asked for, and the requests counted towards the next
        estimate, are kept with wall-clock times: the budget's own clock may
        not survive a restart, and the API's window still holds them after a
        reload.
        """
        wall = self._wall() - self._clock()
        rate = self.limit_rate
        if self.source == "429s" and (sustained := self.sustained()) is not None:
            # Where probing got to: the next run starts there.
            rate = sustained / ESTIMATE_MARGIN
        return {
            "source": self.source,
            "limit_rate": rate,
            "window": self.window,
            "blocked_until": self._wall() + self.blocked_for(),
            "accepted": self._accepted,
            "counting_since": None
            if self._counting_since is None
            else wall + self._counting_since,
            "counted_all": self._counted_all,
            "counted_until": self._wall(),
            "fast_probe": self._fast_probe,
            "fast_period": self._fast_period,
            "cycle": None
            if self._cycle is None
            else [self._cycle[0], wall + self._cycle[1]],
            "refused_at": None if self._refused_at is None else wall + self._refused_at,
        }

    def restore(self, learned: Mapping[str, Any]) -> None:
        """Start from what an earlier run learned (junk is ignored, as never learned).

        A rate learned from 429s is probed upwards again from where the
        earlier run got to, as fast as it was; one from headers stands until
        the next answer's headers.
        """
        source, rate = learned.get("source"), _positive(learned.get("limit_rate"))
        if source in ("headers", "429s") and rate is not None:
            self.source, self.window = source, _positive(learned.get("window"))
            fast = source == "429s" and learned.get("fast_probe") is True
            self._new_estimate(rate, fast=fast, at=self._clock())
            if (period := _positive(learned.get("fast_period"))) is not None:
                self._fast_period = min(max(period, BACKOFF_START), PROBE_PERIOD)
        if (blocked := _positive(learned.get("blocked_until"))) is not None:
            wait = min(blocked - self._wall(), BACKOFF_MAX)
            self.blocked_until = max(self.blocked_until, self._clock() + wait)
        since, until = learned.get("counting_since"), learned.get("counted_until")
        accepted = learned.get("accepted")
        if (
            (since := _positive(since)) is None
            or (until := _positive(until)) is None
            or until > self._wall()
            or not _is_count(accepted)
        ):
            return
        # Stored times move to this run's clock, less the time between the
        # runs: it counts in neither the sample nor the cycle.
        moved = self._clock() - until
        cycle = learned.get("cycle")
        if (
            isinstance(cycle, list)
            and len(cycle) == 2
            and _is_count(cycle[0])
            and (began := _positive(cycle[1])) is not None
            and began <= until
        ):
            self._cycle = (cycle[0], began + moved)
        if (refused := _positive(learned.get("refused_at"))) is not None and (
            refused <= until
        ):
            self._refused_at = refused + moved
        if since <= until:
            # The sample goes on: what the run before sent still counts in
            # the API's window.
            self._counting_since = since + moved
        elif blocked is not None and since <= blocked + 1:
            # It starts when the wait the run before met ends (restored above).
            self._counting_since = max(self.blocked_until, self._clock())
        else:
            return
        self._accepted = accepted
        self._counted_all = learned.get("counted_all") is True

    def _learn_from_429(
        self, since: float, sample_end: float, block_end: float
    ) -> None:
        """Estimate the rate from what was accepted from `since` until `sample_end`."""
        span = sample_end - since
        fast = False
        # A rate the 429 before taught that meets this one before the probe
        # raised it was too high by more than the margin.
        met_again, self._taught = self._taught and self._probe == 1, False
        # A fast probe's doubling that met the limit: the level below it held.
        doubled = self._fast_probe and self._probe > 1
        if self.limit_rate is not None and self._probe != 1:
            # The rate that met the limit is the one to correct (a fast
            # probe by what was accepted since its last doubling). Without a
            # lesson, the probe goes on from it after the wait.
            self._new_estimate(
                self.limit_rate * self._probe, fast=self._fast_probe, at=block_end
            )
        if self.limit_rate is None:
            if not self._accepted or block_end <= since:
                return
            # A first burst met the limit: what it accepted until the wait
            # ends. With the API's wait (its window's reset), that is the
            # rate; after a wait chosen here, it says how much the limit
            # holds, not how fast it refills: start from it, and probe
            # upwards fast.
            estimate = self._accepted / (block_end - since)
            fast = sample_end < block_end
        elif span <= 0 or not self._accepted or not self._counted_all:
            # Nothing to learn from: nothing accepted since the wait (the wait
            # grows instead), or this run's first 429 with a rate known (the
            # window also held what was sent before the run; the next sample
            # tells).
            return
        else:
            estimate = self._accepted / span
            if sample_end == block_end:
                estimate = max([estimate, *self._told_estimates(since, sample_end)])
            elif doubled:
                # Not told the API's wait: the sample shows the pace, not the
                # limit, which lies between the level that held and this one.
                estimate = min(estimate, self.limit_rate / math.sqrt(2))
            elif (
                met_again
                and not self._fast_probe
                and estimate < self.limit_rate
                and self._accepted <= FEW
            ):
                # Not told the API's wait, a sample of a request or two (after
                # a wait chosen here) that shows no more than that rate may
                # show only the pace: the rate is cut at least this much.
                estimate = min(estimate, DECREASE * self.limit_rate)
        self.source, self._taught = "429s", True
        self._new_estimate(estimate, fast=fast, at=block_end)

    def _refilled(self, refused_at: float, at: float) -> None:
        """Take a window found refilled by `at`, after a refusal at `refused_at`.

        It was spent until some moment between them: the rate is at most what
        was accepted since the last window found refilled, over the shortest
        time the window can have lasted (from the first request accepted
        after that refill to this refusal). A sample ended by a bare 429 shows
        how fast the requests went, not how long the window they spent
        lasts. (The first window found refilled only starts the count: what
        the window held before the run, another client's requests or the
        last installation's, is not known.)
        """
        if (
            self._cycle is not None
            and self.source == "429s"
            and refused_at > self._cycle[1]
        ):
            accepted, since = self._cycle
            rate = accepted / (refused_at - since)
            # Lower than the rate in use (the probe's steps included).
            if rate < (self.sustained() or 0.0) / ESTIMATE_MARGIN:
                self._new_estimate(rate, fast=False, at=self._clock())
        self._cycle = (0, at)

    def _told_estimates(self, since: float, sample_end: float) -> list[float]:
        """Return the other rates a sample ended by the API's wait shows.

        The window that refused may have begun before the last wait (another
        limit's) and held requests this sample did not count: with the
        sample before (the wait between them sent nothing), it is counted
        whole. And the probe's last step is the rate that met the limit: the
        ramp below it pulls the sample's average under it. Too high, the next
        window's 429 corrects it (a first window cut short makes it at most
        twice the limit); too low would hold the reads down for an hour or
        more. (A bare 429 ends the step's count at the 429: that is the pace
        that met the limit, not the limit.)
        """
        rates = []
        if (last := self._last_sample) is not None and last[2] == since:
            before, first, _ = last
            rates.append((self._accepted + before) / (sample_end - first))
        if self._raised is not None:
            before, raised_at = self._raised
            rates.append((self._accepted - before) / (sample_end - raised_at))
        return rates

    def _new_estimate(self, rate: float, *, fast: bool, at: float) -> None:
        """Plan with `rate` from `at`: probed upwards from there."""
        self.limit_rate, self._fast_probe = rate, fast
        self._probe, self._probe_since, self._probe_accepted = 1.0, at, 0
        self._probe_step = PROBE_STEP

    def _read_headers(self, headers: Mapping[str, str], now: float) -> bool:
        """Take the budget from rate-limit headers; return whether there were any."""
        limit_field = headers.get("X-RateLimit-Limit") or headers.get("RateLimit-Limit")
        policy = headers.get("RateLimit-Policy")
        if limit_field is None and policy is None:
            # No limit announced (an API without these headers): the other
            # fields say nothing without one, and are not parsed.
            return False
        limit = _number(limit_field)
        remaining = _number(
            headers.get("X-RateLimit-Remaining") or headers.get("RateLimit-Remaining")
        )
        reset = _number(
            headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset")
        )
        if policy is not None:
            params = dict(_FIELD_PARAM.findall(policy))
            limit = _number(params.get("q"))
            if (window := _number(params.get("w"))) is not None and window > 0:
                self.window = window
        if (fields := headers.get("RateLimit")) is not None:
            params = dict(_FIELD_PARAM.findall(fields))
            remaining, reset = _number(params.get("r")), _number(params.get("t"))
        if reset is not None and reset > _UNIX_TIME_FROM:
            # A time on the server's clock, as the answer's Date is.
            server = answered_at(headers)
            reset -= self._wall() if server is None else server.timestamp()
        if limit is None or limit <= 0 or reset is None:
            return False
        reset = max(reset, 0.0)
        if policy is None:
            # A window counts down from its size: the largest reset seen is
            # the best lower bound of the window.
            self.window = max(self.window or 0.0, math.ceil(reset), 1.0)
        window = self.window or 1.0
        self.limit_rate, self.source = limit / window, "headers"
        self.remaining = None if remaining is None else int(remaining)
        self.reset_at = now + reset
        if (
            self.remaining is not None
            and self._own_since is not None
            and now - self._own_since >= window
        ):
            # What the window holds beyond this run's requests is another
            # client's (a second installation, a script): it is left to it,
            # up to half. Only after a window of this run: before, the window
            # may hold what the run before a reload or restart sent.
            others = limit - self.remaining - len(self._own)
            self.others_rate = min(max(others, 0.0), limit / 2) / window
        return True


def _positive(value: Any) -> float | None:
    """Return a positive finite number as a float; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _is_count(value: Any) -> TypeIs[int]:
    """Whether a stored value is a count of requests."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait that an answer's Retry-After asks for (None: it does not).

    An HTTP-date is the server's clock, and so is the answer's `Date`: the
    wait is the time between them, whatever this host's clock says.
    """
    return parse_retry_after(headers.get("Retry-After"), answered_at(headers))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None or not (value := value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    if (when := parse_http_date(value)) is None:
        return None
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
