"""The request scheduler: what to send now, within the API's request budget.

One scheduler per account. Each step the coordinator asks `plan` what to
send, tells `done` what it sent and what came back, and runs the next step
at `next_step`. Every request counts against one credit: status reads, the
refresh watch's looks, the agent list's pages and token requests (the
client's budget counts them all).

The credit grows at the budget's pace (requests per second, learned from the
API's answers: `api/budget.py`) up to a small burst, and only while the API
does not ask to wait; each request sent takes one. What an announced window
still holds when it resets before the next step is credit too (it would be
lost). Without a known pace nothing limits the requests but the first step,
which sends one request to learn whether the API announces its budget.

What is wanted, first to last:

1. the looks due (only while the budget gives each agent 3 requests an hour,
   and never more than half of the pace over the last hour); an
   announced window's room lets them go at once, beyond the credit;
2. the agent list, when due (hourly; after a failure, after a backoff that
   doubles): its pages go together once the credit holds them all;
3. reads of the agents due (never read, asked for, or read a configured
   interval ago), read longest ago first.

Invariants, each checked by tests/test_scheduler.py:

- *Work-conserving*: when something is wanted and the credit holds a request,
  `plan` returns it; `next_step` is never later than the moment the credit
  will hold what is wanted next.
- *Live*: only the API's wait stops the credit from growing, and it ends;
  no answer empties what is wanted (a failure leaves an agent due, and the
  agent list due again after its backoff).
- Nothing is planned while the API asks to wait; after a wait, one request,
  then the pace.
- A reading is shown only while provably current (`expired`): its effective
  interval, the reads' lag and 5 s after it was read, longer only while the
  registrant provably keeps it, and never past 3 effective intervals. Its
  bound never shrinks once granted (the reads were planned with it).
"""

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import math
from typing import Final, NamedTuple, cast

from .api import RequestBudget
from .const import AGENT_LIST_REFRESH

# Steps never follow each other sooner than this, and no agent is read this
# soon after its look.
MIN_STEP: Final = timedelta(seconds=1)
MIN_SPACING: Final = timedelta(seconds=5)
# The credit holds at most this many requests, or a step's worth of the pace:
# a window of unknown size may be as short as a second.
BURST: Final = 5
STEP: Final = timedelta(seconds=5)
# Looks are worth their requests only while the budget gives each agent this
# many requests an hour, and take at most this share of the pace.
LOOKS_NEED_PER_AGENT_HOUR: Final = 3.0
MAX_LOOK_SHARE: Final = 0.5
# Looks, and requests other than reads (for the effective interval), are
# counted over this long (the latter over at least MIN_SPAN since the first
# step).
RECENT_WINDOW: Final = timedelta(minutes=65)
MIN_SPAN: Final = timedelta(minutes=10)
# After a failed agent list, it is asked for again after a backoff that
# doubles from the first to the second.
AGENT_LIST_BACKOFF: Final = (timedelta(seconds=30), timedelta(minutes=30))
# While the API fails, one request this often asks whether it is back (a
# second when that one fails: one agent can fail on its own).
OUTAGE_PROBE: Final = timedelta(seconds=15)
PROBES: Final = 2
# A reading is current for its effective interval, the reads' lag and this.
READ_SLACK: Final = timedelta(seconds=5)
# ... and, while provably kept, at most this many effective intervals.
STALE_INTERVALS: Final = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """The requests to send now."""

    looks: list[str] = field(default_factory=list)
    agent_list: bool = False
    reads: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether anything is to be sent."""
        return bool(self.looks or self.agent_list or self.reads)

    @property
    def agents(self) -> list[str]:
        """The agents whose status is read: looks first."""
        return [*self.looks, *self.reads]


class _Reading(NamedTuple):
    """When an agent was last read, and how long that reading may be shown."""

    at: datetime
    # The effective interval it was read in, and the reads' lag then: a
    # reading's bound never shrinks once granted (a lag learned an hour ago
    # ages out, the reads planned with it do not come sooner).
    interval: timedelta
    lag: timedelta
    # Until when it provably stays what the registrant has (None: unknown).
    stays_until: datetime | None


class Scheduler:
    """Plans every request of one account."""

    def __init__(self, interval: timedelta, budget: RequestBudget) -> None:
        """Read each agent once per `interval` while the budget allows it."""
        self.interval = interval
        self.budget = budget
        # How often each agent is read (see `_update_effective_interval`).
        self.effective_interval = interval
        # The earliest a reading may expire (None: to be worked out).
        self._next_expiry: datetime | None = None
        # Agents by the time of their last read attempt (None: never).
        self._last: dict[str, datetime | None] = {}
        self._due_now: set[str] = set()
        # When each agent was last looked at.
        self._looked: dict[str, datetime] = {}
        self._readings: dict[str, _Reading] = {}
        # Unbounded until a pace is known (see `_accrue`).
        self._credit = math.inf
        self._credited_at: datetime | None = None
        self._first_step: datetime | None = None
        self._answered = False
        self._paced = False
        # Requests that were not reads, and looks, with when they went.
        self._others: deque[tuple[datetime, int]] = deque()
        self._looks: deque[datetime] = deque()
        # What looks took beyond the credit, on an announced window's room.
        self._on_room = 0
        self._list_due: datetime | None = None
        self._list_pages = 1
        self._list_failures = 0
        self._outage = False
        self._probes = 0
        self._probe_at: datetime | None = None
        # The waits the API asked for, and how late the oldest reads came.
        self._waits: deque[tuple[datetime, datetime]] = deque()
        self._late: deque[tuple[datetime, timedelta]] = deque()

    # What is watched --------------------------------------------------------------

    @property
    def agents(self) -> int:
        """How many agents are scheduled."""
        return len(self._last)

    def sync(self, agent_ids: Iterable[str]) -> None:
        """Schedule these agents (new ones are due now); forget the others."""
        wanted = dict.fromkeys(agent_ids)
        for gone in self._last.keys() - wanted.keys():
            del self._last[gone]
            self._readings.pop(gone, None)
            self._looked.pop(gone, None)
            self._due_now.discard(gone)
        for agent_id in wanted:
            self._last.setdefault(agent_id, None)

    def read_all(self) -> None:
        """Read every agent as soon as the budget allows (a refresh asked for)."""
        self._due_now = set(self._last)

    def list_now(self) -> None:
        """Read the agent list at the next step."""
        self._list_due = None

    # The budget ---------------------------------------------------------------------

    @property
    def looks_allowed(self) -> bool:
        """Whether the budget leaves room for the refresh watch's looks."""
        pace = self.budget.sustained()
        return pace is None or pace * 3600 >= LOOKS_NEED_PER_AGENT_HOUR * max(
            self.agents, 1
        )

    def budget_figures(self) -> tuple[int, int | None]:
        """Return the effective interval (s) and the request budget (per hour, if known)."""
        sustained = self.budget.sustained()
        return (
            round(self.effective_interval.total_seconds()),
            None if sustained is None else round(sustained * 3600),
        )

    def _update_effective_interval(self, now: datetime) -> None:
        """Work out how often each agent is read: the interval, or what the budget allows."""
        pace = self.budget.sustained()
        interval = self.interval
        if pace is not None and self.agents:
            reads = max(pace - self._others_rate(now), pace * (1 - MAX_LOOK_SHARE))
            interval = max(interval, timedelta(seconds=self.agents / reads))
        if interval != self.effective_interval:
            self.effective_interval = interval
            # Every reading's bound moves with it.
            self._next_expiry = None

    def _others_rate(self, now: datetime) -> float:
        """Return the requests per second that were not reads, lately."""
        since_first = now - (self._first_step or now)
        span = min(max(since_first, MIN_SPAN), RECENT_WINDOW)
        return sum(count for _, count in self._others) / span.total_seconds()

    def _accrue(self, now: datetime) -> float | None:
        """Add the credit earned since the last step; return the pace (None: unknown)."""
        pace = self.budget.pace()
        if self._first_step is None:
            self._first_step = now
        elapsed = (
            0.0
            if self._credited_at is None
            else max((now - self._credited_at).total_seconds(), 0.0)
        )
        self._credited_at = now
        self._update_effective_interval(now)
        if (blocked := self.budget.blocked_for()) > 0:
            end = now + timedelta(seconds=blocked)
            if self._waits and self._waits[-1][1] >= now:
                end = max(end, self._waits.pop()[1])
            self._waits.append((now, end))
            # One request when the wait ends (what went before is paid for
            # by the wait), then the pace.
            self._credit = 1.0
            return pace
        if pace is None:
            # No limit known: one request first, to see whether the API
            # announces one; after that, nothing holds the requests back.
            self._credit = math.inf if self._answered else 1.0
            return None
        cap = max(float(BURST), pace * MIN_STEP.total_seconds())
        if self._list_due is not None and self._list_due <= now:
            cap = max(cap, float(self._list_pages))
        if not self._paced:
            # A pace just known: after a wait one request, then the pace;
            # otherwise what an announced window spares goes at once.
            self._paced = True
            self._credit = 1.0 if self._waits else max(cap, self.budget.spare())
            return pace
        if self._waits and (since := self._waits[-1][1]) > now - timedelta(
            seconds=elapsed
        ):
            elapsed = max((now - since).total_seconds(), 0.0)
        self._credit = min(self._credit + elapsed * pace, cap)
        if 0 < (self.budget.resets_in() or math.inf) <= MIN_STEP.total_seconds():
            # An announced window that resets before the next step: what it
            # still holds goes now, or it is lost.
            self._credit = max(self._credit, math.floor(self.budget.room()))
        return pace

    # Planning -------------------------------------------------------------------------

    def plan(
        self,
        now: datetime,
        looks_due: Sequence[str] = (),
        *,
        list_wanted: bool = True,
    ) -> Plan:
        """Return what to send now (see the module's docstring)."""
        pace = self._accrue(now)
        if self.budget.blocked_for() > 0:
            return Plan()
        if self._outage:
            if self._probe_at != now:
                self._probe_at, self._probes = now, 0
            if self._probes >= PROBES:
                return Plan()
            self._probes += 1
            if not self._last:
                return Plan(agent_list=list_wanted)
            return Plan(reads=[self._oldest()[0]])
        credit = self._credit
        looks: list[str] = []
        if looks_due and self.looks_allowed:
            looks = self._looks_in_turn(now, [a for a in looks_due if a in self._last])
            if pace is not None:
                room = math.floor(self.budget.room() - max(credit, 0.0))
                allowed = max(math.floor(credit), room)
                looks = looks[: max(min(allowed, self._look_share_left(now, pace)), 0)]
                if len(looks) <= room:
                    # An announced window lets them go beyond the credit.
                    self._on_room += len(looks)
                    credit += len(looks)
            credit -= len(looks)
        agent_list = False
        list_due = list_wanted and (self._list_due is None or self._list_due <= now)
        if list_due:
            pages = 1 if pace is None else self._list_pages
            if credit >= pages or (
                pace is not None and self.budget.room() >= pages + len(looks)
            ):
                agent_list = True
                credit -= pages
            else:
                # The reads make room for the pages first.
                credit = 0.0
        reads: list[str] = []
        if credit >= 1:
            taken = set(looks)
            for agent_id in self._due(now):
                if credit - len(reads) < 1:
                    break
                if agent_id not in taken:
                    reads.append(agent_id)
        return Plan(looks=looks, agent_list=agent_list, reads=reads)

    def _due(self, now: datetime) -> list[str]:
        """Return the agents due for a read, read longest ago first."""
        due = [
            (at, agent_id)
            for agent_id, at in self._last.items()
            if self._due_at(agent_id, at, now) <= now
        ]
        due.sort(key=lambda item: (item[0] is not None, item[0] or now))
        return [agent_id for _, agent_id in due]

    def _due_at(
        self, agent_id: str, read_at: datetime | None, now: datetime
    ) -> datetime:
        """Return when an agent's read is due.

        Its interval after its last read, but never within MIN_SPACING of its
        last look.
        """
        due = (
            now
            if read_at is None or agent_id in self._due_now
            else read_at + self.interval
        )
        if (looked := self._looked.get(agent_id)) is not None:
            due = max(due, looked + MIN_SPACING)
        return due

    def _oldest(self) -> tuple[str, datetime | None]:
        """Return the agent read longest ago (never read: first), and when."""
        never = next((a for a, at in self._last.items() if at is None), None)
        if never is not None:
            return never, None
        return min(self._last.items(), key=lambda item: cast("datetime", item[1]))

    def _look_share_left(self, now: datetime, pace: float) -> int:
        """Return how many looks the share of the pace still allows now."""
        self._forget_before(now - RECENT_WINDOW)
        allowed = max(
            float(BURST), MAX_LOOK_SHARE * pace * RECENT_WINDOW.total_seconds()
        )
        return max(math.floor(allowed) - len(self._looks), 0)

    def _forget_before(self, since: datetime) -> None:
        """Forget the looks and other requests sent before `since`."""
        while self._others and self._others[0][0] < since:
            self._others.popleft()
        while self._looks and self._looks[0] <= since:
            self._looks.popleft()

    def _looks_in_turn(self, now: datetime, due: list[str]) -> list[str]:
        """Return the looks in the order they go.

        As they fell due (the order of the refreshes, and so of the losses a
        look shows), but a reading that expires before its turn comes first.
        """
        pace = self.budget.pace()
        if not pace or len(due) <= 1:
            return due
        last = now + timedelta(seconds=len(due) / pace)
        return sorted(
            due,
            key=lambda agent_id: min(self._valid_until(agent_id) or last, last),
        )

    def done(
        self,
        now: datetime,
        plan: Plan,
        answered: Mapping[str, bool],
        *,
        sent: int,
        list_pages: int | None = None,
        outage: bool = False,
    ) -> None:
        """Account for what was sent.

        `answered`: each agent of the plan, whether the API answered for it
        (False: held back by a 429, still due). `sent`: every request sent,
        tokens and the list's pages included. `list_pages`: what the agent
        list took when it was read (None: it failed). `outage`: nothing
        could be read; the next steps probe.
        """
        charged = sent - min(self._on_room, sent)
        self._on_room = 0
        if math.isfinite(self._credit):
            self._credit -= charged
        if any(answered.values()) or (plan.agent_list and list_pages):
            self._answered = True
        if self._outage and not outage:
            # The API is back: every agent now, so that all come back together.
            self.read_all()
        elif outage and not self._outage:
            # Just gone: the probes start at the next step.
            self._probe_at, self._probes = now, PROBES
        self._outage = outage
        if plan.agent_list:
            if list_pages is not None:
                self._list_pages = max(list_pages, 1)
                self._list_failures = 0
                self._list_due = now + AGENT_LIST_REFRESH
            else:
                first, longest = AGENT_LIST_BACKOFF
                self._list_due = now + min(first * 2**self._list_failures, longest)
                self._list_failures += 1
        reads = 0
        for agent_id in plan.reads:
            if agent_id in self._last and answered.get(agent_id, False):
                reads += 1
                self._note_late(now, agent_id)
                self._last[agent_id] = now
                self._due_now.discard(agent_id)
        binding = self.effective_interval > self.interval
        for agent_id in plan.looks:
            self._looked[agent_id] = now
            if binding and agent_id in self._last and answered.get(agent_id, False):
                # The budget binds: a look reads the whole status, so it counts
                # as the agent's read and the read it saves goes to another.
                # With room, reads keep the configured interval: more samples.
                self._last[agent_id] = now
                self._due_now.discard(agent_id)
        self._looks.extend(now for _ in plan.looks)
        if others := sent - reads:
            self._others.append((now, others))
        self._forget_before(now - RECENT_WINDOW)
        self._update_effective_interval(now)

    def next_step(self, now: datetime, next_look: datetime | None = None) -> datetime:
        """When the next step is due: the first thing wanted, once the credit holds it."""
        if self._outage:
            return now + OUTAGE_PROBE
        ready = self._credit_ready(now)
        wanted: list[datetime] = []
        if next_look is not None and self.looks_allowed:
            # An announced window's room lets a look go beyond the credit.
            room = self.budget.room() - max(self._credit, 0.0) >= 1
            wanted.append(next_look if room else max(next_look, ready(1)))
        list_due = self._list_due or now
        wanted.append(max(list_due, ready(self._list_pages if list_due <= now else 1)))
        if self._last:
            due = min(
                self._due_at(agent_id, at, now) for agent_id, at in self._last.items()
            )
            wanted.append(max(due, ready(1)))
        when = min(wanted)
        if (expiry := self.next_expiry()) is not None:
            when = min(when, expiry)
        return max(when, now + MIN_STEP)

    def _credit_ready(self, now: datetime) -> Callable[[float], datetime]:
        """Return when the credit will hold a number of requests."""
        blocked = timedelta(seconds=self.budget.blocked_for())
        pace = self.budget.pace()
        # The pace of an announced window holds only until it refills.
        resets_in = self.budget.resets_in() or math.inf

        def ready(requests: float) -> datetime:
            if blocked or pace is None:
                return now + blocked
            if pace <= 0:
                # Nothing left to spend before the window resets.
                return now + min(STEP, timedelta(seconds=resets_in))
            wait = max(requests - self._credit, 0.0) / pace
            return now + timedelta(seconds=min(wait, resets_in))

        return ready

    # How long a reading is shown -----------------------------------------------------

    def read(self, agent_id: str, now: datetime, stays_until: datetime | None) -> None:
        """Note a reading of an agent, and until when it provably stays current."""
        reading = _Reading(now, self.effective_interval, self.read_lag, stays_until)
        self._readings[agent_id] = reading
        if self._next_expiry is not None:
            self._next_expiry = min(self._next_expiry, self._bound(reading))

    def forget(self, agent_id: str) -> None:
        """Drop an agent's reading (it could not be read)."""
        self._readings.pop(agent_id, None)

    @property
    def read_lag(self) -> timedelta:
        """How late after its interval a read may come: a step, or how late reads came lately."""
        late = self._late[0][1] if self._late else timedelta(0)
        # Reads that came early say nothing: the lag is never under a step.
        return STEP + max(late, timedelta(0))

    def _valid_until(self, agent_id: str) -> datetime | None:
        """Until when the agent's reading may be shown (None: there is none)."""
        reading = self._readings.get(agent_id)
        return None if reading is None else self._bound(reading)

    def _bound(self, reading: _Reading) -> datetime:
        """Until when a reading may be shown."""
        interval = max(self.effective_interval, reading.interval)
        own = reading.at + interval + max(self.read_lag, reading.lag) + READ_SLACK
        if reading.stays_until is None:
            return own
        return max(
            own, min(reading.stays_until, reading.at + STALE_INTERVALS * interval)
        )

    def expired(self, now: datetime) -> dict[str, datetime]:
        """Return the agents whose reading is no longer current, with when it was made.

        Their readings are dropped.
        """
        if (first := self.next_expiry()) is None or now < first:
            return {}
        gone = {
            agent_id: reading.at
            for agent_id, reading in self._readings.items()
            if now >= self._bound(reading)
        }
        for agent_id in gone:
            del self._readings[agent_id]
        self._next_expiry = None
        return gone

    def next_expiry(self) -> datetime | None:
        """When the next reading expires (None: no reading shown)."""
        if self._next_expiry is None and self._readings:
            self._next_expiry = min(map(self._bound, self._readings.values()))
        return self._next_expiry

    def _waited(self, since: datetime, now: datetime) -> timedelta:
        """How long the API had requests wait between `since` and `now`."""
        while len(self._waits) > 1 and self._waits[0][1] <= since:
            self._waits.popleft()
        return sum(
            (
                max(min(end, now) - max(start, since), timedelta(0))
                for start, end in self._waits
            ),
            timedelta(0),
        )

    def _note_late(self, now: datetime, agent_id: str) -> None:
        """Keep how late a read came past its effective interval (a wait excused)."""
        if (last := self._last.get(agent_id)) is None or agent_id in self._due_now:
            return
        late = now - last - self.effective_interval - self._waited(last, now)
        while self._late and self._late[-1][1] <= late:
            self._late.pop()
        self._late.append((now, late))
        self._next_expiry = None
        since = now - RECENT_WINDOW
        while self._late[0][0] < since:
            self._late.popleft()
