"""Refresh watch: look at an agent at the ticks its registration may refresh.

OpenSIPS' uac_registrant (measured on the real module, docs/how-it-works.md) sends
every REGISTER at a tick of its timer, once every `timer_interval` (TI, 100 s
by default) per registration, so an agent's ticks are its `lastRegisterSent`
plus whole TIs. A registered binding is refreshed at the first tick at or
after a threshold: T + E - 2 TI on OpenSIPS 4.x (between 2 TI and TI before
the binding expires; the timer's drift makes it flip between two ticks), T + E
- TI on 3.x. The API's `expires` is either the binding's expiry (T + E) or
OpenSIPS' `registration_t_out` (T + E - TI); Telzino does not say which. So
the refresh comes at one of the agent's ticks between `expires` - 2 TI and
`expires` + TI, and most losses (PBX down, password changed, registrar errors)
show at that moment. Which two of those four ticks it can be depends on the
release and the reading only, the same for every agent of an account: the
watch learns it from the refreshes it sees, and then looks at two ticks
instead of up to four.

The watch looks at each of those ticks, a few seconds after it, until the
agent's `lastRegisterSent` moves; after a REGISTER that is still unanswered,
once its SIP transaction has timed out (30 s). A failed registration is not
retried before its retry threshold (about E - TI later), so the watch does not
look at it until then. TI is learned from the gaps between an agent's
refreshes; until one is seen, the module's default is assumed.
"""

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
import math
from typing import Final

from .api import (
    RegistrationState,
    RegistrationStatus,
    TelzinoError,
    TelzinoRateLimitedError,
)

# Never look at one agent more often than this.
MIN_SPACING: Final = timedelta(seconds=5)
# After a tick: its second, the timer's drift (up to 0.5 s) and time for the
# registrar's reply to arrive.
REPLY_MARGIN: Final = timedelta(seconds=3)
TICK_SLACK: Final = timedelta(seconds=1)
# OpenSIPS gives up on an unanswered REGISTER after 30 s (measured 29.6-30.7 s).
TRANSACTION_TIMEOUT: Final = timedelta(seconds=30)
# uac_registrant's default timer_interval, and what a learned one may be.
DEFAULT_TIMER: Final = 100
MIN_TIMER: Final = 10
MAX_TIMER: Final = 600
# REGISTER gaps kept per agent to learn its timer from; how far the timer's
# drift moves a gap; how long a registrar may take to answer (a transaction).
GAPS_KEPT: Final = 4
GAP_SLACK: Final = 2
MAX_REPLY_DELAY: Final = 31
# An expiry further ahead than this (or with no lifetime known, than a day) is
# not trusted: the watch falls back to plain interval polling.
EXPIRY_HORIZON_FACTOR: Final = 2
DEFAULT_HORIZON: Final = timedelta(days=1)
# Looks after a failed look, one transaction timeout apart.
MAX_PROBES: Final = 3
# Where a refresh lands, in timer intervals from the `expires` shown before
# it: the two ticks of OpenSIPS 4.x with the binding's expiry, of 4.x with
# registration_t_out (or 3.x with the expiry), of 3.x with registration_t_out.
REFRESH_TICK_PAIRS: Final = ((-2, -1), (-1, 0), (0, 1))
FULL_WINDOW: Final = (-2, 1)
# Refreshes kept to learn the pair from, and how many it takes: one alone
# could be an odd one out (a REGISTER sent between ticks).
OFFSETS_KEPT: Final = 8
OFFSETS_TO_NARROW: Final = 2

PENDING_STATES: Final = frozenset(
    {RegistrationState.REGISTERING, RegistrationState.AUTHENTICATING}
)
FAILED_STATES: Final = frozenset(
    {
        RegistrationState.REGISTER_TIMEOUT,
        RegistrationState.INTERNAL_ERROR,
        RegistrationState.WRONG_CREDENTIALS,
        RegistrationState.REGISTRAR_ERROR,
    }
)


@dataclass(slots=True)
class _AgentWatch:
    """What the watch knows of one agent."""

    last_register_sent: datetime | None = None
    registered: bool = False
    # The `expires` the API showed while registered (a refresh keeps it).
    expires: datetime | None = None
    # The registration's lifetime E, and the seconds between its last refreshes
    # (REGISTERs of a registered binding): E - 2 TI or E - TI (3.x: E - TI or E).
    lifetime: int | None = None
    gaps: deque[int] = field(default_factory=lambda: deque(maxlen=GAPS_KEPT))
    # When OpenSIPS will next send a REGISTER for a failed registration.
    next_attempt: datetime | None = None
    # The first tick at which a registered binding may refresh.
    refresh_from: datetime | None = None
    # Whether the API showed a refresh (a later `expires`) without moving
    # `lastRegisterSent`: then the agent's ticks are not known.
    unstamped: bool = False
    probes: int = 0
    planned: datetime | None = None
    # The reading and the window the plan was made from: the same (unchanged)
    # reading plans the same look while that look is ahead.
    planned_from: RegistrationStatus | None = None
    planned_window: tuple[int, int] | None = None

    @property
    def timer(self) -> timedelta:
        """The agent's timer_interval: learned from its refreshes, else the default."""
        return timedelta(seconds=_timer_of(tuple(self.gaps), self.lifetime))


class RefreshWatch:
    """Plans single-agent looks at the ticks where a refresh may come.

    It only plans: the coordinator's scheduler sends the looks that are due,
    before any interval read, within the account's request budget.
    """

    def __init__(self) -> None:
        """Start with no agent known."""
        self._agents: dict[str, _AgentWatch] = {}
        # Where refreshes landed (timer intervals from `expires`), and the
        # ticks, in those units, that a refresh can come at.
        self._offsets: deque[int] = deque(maxlen=OFFSETS_KEPT)
        self.window: tuple[int, int] = FULL_WINDOW
        # For diagnostics and the benchmark.
        self.polls = 0

    def observe(
        self, agent_id: str, status: RegistrationStatus | None, now: datetime
    ) -> None:
        """Learn from a reading of any source and plan the agent's next look."""
        if (watch := self._agents.get(agent_id)) is None:
            watch = self._agents[agent_id] = _AgentWatch()
        if status is None:
            watch.planned = None
            return
        if (
            status is watch.planned_from
            and self.window is watch.planned_window
            and watch.planned is not None
            and watch.planned > now + MIN_SPACING
        ):
            # Most readings: nothing new, and the look planned from this very
            # reading still ahead (planning again would give the same).
            return
        sent = status.last_register_sent
        if sent is not None and sent != watch.last_register_sent:
            if (
                watch.registered
                and watch.last_register_sent is not None
                and sent > watch.last_register_sent
            ):
                # A refresh of the binding the last REGISTER made.
                watch.gaps.append(
                    round((sent - watch.last_register_sent).total_seconds())
                )
                watch.unstamped = False
                if watch.expires is not None:
                    self._learn_offset(sent - watch.expires, watch.timer)
            watch.last_register_sent = sent
            watch.probes = 0
        elif (
            status.is_registered
            and watch.registered
            and watch.expires is not None
            and status.expires is not None
            and status.expires - watch.expires >= timedelta(seconds=MIN_TIMER)
        ):
            # Refreshed, and its REGISTER's time not shown.
            watch.unstamped = True
        watch.registered = status.is_registered
        watch.lifetime = status.registration_interval
        if status.is_registered:
            watch.expires = status.expires
        timer = watch.timer
        watch.next_attempt = next_attempt(status, timer, now)
        when = self._next_look(watch, status, timer, now)
        watch.planned = None if when is None else max(when, now + MIN_SPACING)
        watch.planned_from, watch.planned_window = status, self.window

    def look_by(self, agent_id: str, when: datetime) -> None:
        """Look at the agent by `when`, when what its reading means runs out.

        A binding that takes calls while not registered (a refresh, or a
        reload that met one) does so only until a deadline: a look then tells
        whether it was registered again, so a loss shows at that moment, not
        at the next interval read.
        """
        watch = self._agents.get(agent_id)
        if watch is not None and (watch.planned is None or when < watch.planned):
            watch.planned = when

    def next_attempt(self, agent_id: str) -> datetime | None:
        """When OpenSIPS will next try to register a failed agent, if known."""
        watch = self._agents.get(agent_id)
        return None if watch is None else watch.next_attempt

    def next_tick(self, agent_id: str, after: datetime) -> datetime | None:
        """Return the agent's first timer tick at or after `after`, if its ticks are known."""
        watch = self._agents.get(agent_id)
        if watch is None or watch.last_register_sent is None:
            return None
        return _tick_at_or_after(watch.last_register_sent, watch.timer, after)

    def timer(self, agent_id: str) -> timedelta:
        """Return the agent's timer interval: learned, else the default."""
        watch = self._agents.get(agent_id)
        return timedelta(seconds=DEFAULT_TIMER) if watch is None else watch.timer

    def refresh_may_be_under_way(self, agent_id: str, now: datetime) -> bool:
        """Tell whether the agent's binding may be refreshing now.

        From its first refresh tick on; at any time when the API does not show
        when its refreshes go.
        """
        watch = self._agents.get(agent_id)
        if watch is None:
            return False
        return watch.unstamped or (
            watch.refresh_from is not None and now >= watch.refresh_from
        )

    def refresh_due(self, agent_id: str) -> datetime | None:
        """Return the first tick at which the agent's binding may refresh, if known.

        Until then a registered reading stays what OpenSIPS has (it changes a
        registered binding only at its refresh, or when disabled or reloaded).
        """
        watch = self._agents.get(agent_id)
        return None if watch is None else watch.refresh_from

    def retry(self, agent_id: str, now: datetime) -> None:
        """Look once more after a look failed (the API did not answer).

        A refresh may be pending behind the failure: the next look comes after
        a SIP transaction's timeout, at most MAX_PROBES times in a row.
        """
        watch = self._agents.get(agent_id)
        if watch is None or watch.probes >= MAX_PROBES:
            return
        watch.probes += 1
        watch.planned = now + TRANSACTION_TIMEOUT + REPLY_MARGIN
        watch.planned_from = None

    def due(self, now: datetime) -> list[str]:
        """Return the agents whose look is due, the longest due first."""
        due = [
            (watch.planned, agent_id)
            for agent_id, watch in self._agents.items()
            if watch.planned is not None and watch.planned <= now
        ]
        return [agent_id for _, agent_id in sorted(due)]

    def taken(self, agent_id: str) -> None:
        """Count the agent's look as sent: the scheduler sends it now."""
        if (watch := self._agents.get(agent_id)) is not None and watch.planned:
            watch.planned = None
            self.polls += 1

    def looked(
        self,
        now: datetime,
        looks: Iterable[str],
        answers: Mapping[str, RegistrationStatus | TelzinoError],
    ) -> set[str]:
        """Count the looks that went; return those that failed (looked at again).

        A look the rate limit held back stays due.
        """
        failed: set[str] = set()
        for agent_id in looks:
            answer = answers.get(agent_id)
            if isinstance(answer, TelzinoRateLimitedError):
                continue
            self.taken(agent_id)
            if isinstance(answer, TelzinoError):
                self.retry(agent_id, now)
                failed.add(agent_id)
        return failed

    def next_look(self) -> datetime | None:
        """When the next look is due, if any is planned."""
        return min(
            (w.planned for w in self._agents.values() if w.planned is not None),
            default=None,
        )

    def retain(self, agent_ids: Iterable[str]) -> None:
        """Stop watching agents that are no longer polled."""
        keep = set(agent_ids)
        for agent_id in self._agents.keys() - keep:
            del self._agents[agent_id]

    def _next_look(
        self,
        watch: _AgentWatch,
        status: RegistrationStatus,
        timer: timedelta,
        now: datetime,
    ) -> datetime | None:
        sent = watch.last_register_sent
        if sent is None:
            return None
        watch.refresh_from = None
        if watch.unstamped:
            return None  # its ticks are not known: the interval polls tell
        if status.state in PENDING_STATES:
            # Reply pending: look once the transaction has timed out (once:
            # a state that outlasts it is left to the interval polls).
            return _unless_past(sent + TRANSACTION_TIMEOUT + REPLY_MARGIN, now)
        if status.state in FAILED_STATES:
            # Not retried before its threshold: look just after that attempt.
            if watch.next_attempt is None:
                return None
            return _unless_past(watch.next_attempt + TICK_SLACK + REPLY_MARGIN, now)
        if not status.is_registered:
            return None
        expires = self._trusted_expiry(status, now)
        if expires is None:
            return None
        # The refresh is at one of the agent's ticks in this window (see the
        # module docstring): the release's and reading's, once learned.
        # A tick less than REPLY_MARGIN ago has been looked at, by this look or
        # a poll.
        low, high = self.window
        first = max(expires + low * timer - TICK_SLACK, now - REPLY_MARGIN)
        tick = _tick_at_or_after(sent, timer, first)
        if tick > expires + high * timer + TICK_SLACK:
            return None  # past the window: the interval polls will tell
        watch.refresh_from = tick
        return tick + TICK_SLACK + REPLY_MARGIN

    def _learn_offset(self, offset: timedelta, timer: timedelta) -> None:
        """Narrow the window to the tick pair that the refreshes seen fit.

        A refresh off the agent's ticks (sent on enabling, or a timer not
        learned yet) or outside the window (a refresh not seen, and the next
        one) teaches nothing; refreshes that no pair fits (the API changed
        what `expires` means) widen it again until they age out.
        """
        ticks = round(offset / timer)
        if (
            abs(offset - ticks * timer) > 2 * TICK_SLACK
            or not FULL_WINDOW[0] <= ticks <= FULL_WINDOW[1]
        ):
            return
        self._offsets.append(ticks)
        pairs = [
            pair
            for pair in REFRESH_TICK_PAIRS
            if all(seen in pair for seen in self._offsets)
        ]
        window = (
            (min(low for low, _ in pairs), max(high for _, high in pairs))
            if pairs and len(self._offsets) >= OFFSETS_TO_NARROW
            else FULL_WINDOW
        )
        if window != self.window:
            # Only a new window makes the agents' plans stale.
            self.window = window

    def _trusted_expiry(
        self, status: RegistrationStatus, now: datetime
    ) -> datetime | None:
        expires = status.expires
        horizon = _horizon_of(status.registration_interval)
        if expires is None or expires <= now - horizon or expires - now > horizon:
            return None
        return expires


def next_attempt(
    status: RegistrationStatus, timer: timedelta, now: datetime
) -> datetime | None:
    """Return when OpenSIPS will next try to register a failed registration.

    The first tick at or after its retry threshold: `expires` when the API
    shows OpenSIPS' registration_t_out there, else the failure + E - TI. None
    for an agent that is not failed, or disabled, or when it cannot be known.
    """
    sent = status.last_register_sent
    if status.state not in FAILED_STATES or sent is None or status.enabled is False:
        return None
    if status.expires is not None and status.expires > sent:
        threshold = status.expires
    elif status.registration_interval:
        failed = sent + (
            TRANSACTION_TIMEOUT
            if status.state is RegistrationState.REGISTER_TIMEOUT
            else timedelta()
        )
        threshold = failed + timedelta(seconds=status.registration_interval) - timer
    else:
        return None
    attempt = _tick_at_or_after(sent, timer, threshold - TICK_SLACK)
    return attempt if attempt > now - timer else None


@lru_cache(maxsize=64)
def _horizon_of(registration_interval: int | None) -> timedelta:
    """How far an expiry may be from now to be trusted (agents share a few intervals)."""
    if registration_interval:
        return timedelta(seconds=registration_interval * EXPIRY_HORIZON_FACTOR)
    return DEFAULT_HORIZON


def _unless_past(when: datetime, now: datetime) -> datetime | None:
    return when if when > now else None


def _tick_at_or_after(tick: datetime, timer: timedelta, when: datetime) -> datetime:
    """Return the first of the ticks `tick + k x timer` at or after `when`."""
    periods = math.ceil((when - tick) / timer)
    return tick + periods * timer


@lru_cache(maxsize=1024)
def _timer_of(gaps: tuple[int, ...], lifetime: int | None) -> int:
    """Return the timer interval the refresh gaps show; else the default.

    A REGISTER goes at a tick, so a gap is a whole number n of timer intervals
    (TI), give or take the timer's drift. The refresh goes at the first tick
    at or after the reply + E - c TI (c = 2 on OpenSIPS 4.x, 1 on 3.x), the
    reply at most a transaction after the REGISTER. The interval chosen
    explains the most gaps (one off the pattern, after an enable, is
    outvoted), then with the least drift and the least reply delay; then the
    default; then the smallest, whose ticks are the most often looked at.
    """
    if not gaps or not lifetime:
        return DEFAULT_TIMER
    candidates = {DEFAULT_TIMER}
    for gap in set(gaps):
        for periods in range(1, (gap + GAP_SLACK) // MIN_TIMER + 1):
            low = max(MIN_TIMER, math.ceil((gap - GAP_SLACK) / periods))
            high = min(MAX_TIMER, lifetime - 1, (gap + GAP_SLACK) // periods)
            candidates.update(range(low, high + 1))
    fit, timer = min((_fit(timer, gaps, lifetime), timer) for timer in candidates)
    return timer if fit[0] < len(gaps) else DEFAULT_TIMER


def _fit(
    timer: int, gaps: tuple[int, ...], lifetime: int
) -> tuple[int, int, int, bool]:
    """How badly `timer` explains the gaps: unexplained, drift, reply delay, not default."""
    unexplained = delay = drift = 0
    for gap in gaps:
        periods = round(gap / timer)
        delays = [
            max(0, (periods - 1 + c) * timer - lifetime)
            for c in (1, 2)
            if c * timer < lifetime
            and (periods + c) * timer >= lifetime
            and (periods - 1 + c) * timer - lifetime <= MAX_REPLY_DELAY
        ]
        if periods < 1 or abs(gap - periods * timer) > GAP_SLACK or not delays:
            unexplained += 1
            continue
        delay = max(delay, min(delays))
        drift += abs(gap - periods * timer)
    return unexplained, drift, delay, timer != DEFAULT_TIMER
