"""The rolling read schedule: which agents to read now, within the request budget.

One scheduler for every request of an account. Each step it sends, first, the
refresh watch's looks that are due (they make a loss visible within seconds),
then reads of the agents read longest ago, so that each agent is read once per
effective interval, at its own moment rather than in one burst per interval.

The effective interval is the configured one while the budget allows it, and
otherwise as short as the budget allows: the agents divided by the requests
per second left after the looks.
"""

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
import math
from typing import Final

# Within a known budget, reads are batched into steps this far apart (a look
# due has a step of its own) ...
STEP: Final = timedelta(seconds=5)
# ... and without one, into this many steps an interval: spread out as well,
# and each step costs the event loop a coordinator refresh.
UNLIMITED_STEPS: Final = 4
# With a known budget, requests leave in steps of at most this many ...
BURST: Final = 5
# ... and no step follows the last sooner than this.
MIN_STEP: Final = timedelta(seconds=1)
# The refresh watch is worth its requests only when the budget gives each
# agent at least this many requests an hour; below it, every request reads.
LOOKS_NEED_PER_AGENT_HOUR: Final = 3.0
# Within a budget, reads leave this many requests in hand for a look that
# falls due, so that looks never wait for the reads.
LOOK_RESERVE: Final = 1
# Looks and the agent list never take more than this share of the budget
# from the reads.
MAX_LOOK_SHARE: Final = 0.5
# What happened lately is counted over this long: the requests beyond the
# reads (the hourly agent list always once), and how late the reads came.
RECENT_WINDOW: Final = timedelta(minutes=65)
# Looks are counted over the time since the first step while it is shorter,
# but over at least this long: the first look or two say little of the rate.
MIN_LOOK_SPAN: Final = timedelta(minutes=10)


class ReadSchedule:
    """Which agents to read at each step, and when the next step is."""

    def __init__(self, interval: timedelta) -> None:
        """Read every agent once per `interval` when the budget allows it."""
        self.interval = interval
        self.effective_interval = interval
        # Agents by the time of their last read attempt, oldest first (never
        # read: None, at the front).
        self._order: OrderedDict[str, datetime | None] = OrderedDict()
        self._read_credit = 0.0
        self._request_credit = 0.0
        self._credited_at: datetime | None = None
        self._first_step: datetime | None = None
        # The waits the API asked for, from when to when (the last one
        # always): while it asked to wait no request credit accrues, and
        # what it allows again comes back at its pace, not in a burst.
        self._holds: deque[tuple[datetime, datetime]] = deque()
        # Whether requests went at a known pace yet.
        self._paced = False
        # When each look went.
        self._looks_sent: deque[datetime] = deque()
        # The requests of each agent list (its pages, and the credit saved
        # for them), when it was read.
        self._unplanned: deque[tuple[datetime, int]] = deque()
        self._looking: frozenset[str] = frozenset()
        self._look_horizon = interval
        # How late past the effective interval the oldest agent's read came,
        # lately: only what may still be the longest is kept, longest first.
        self._late: deque[tuple[datetime, timedelta]] = deque()
        # Requests about to go together (the agent list's pages), at the
        # step that asked: the reads wait until the pace has saved as many.
        # Each step asks again, so that a saving nobody waits for lapses.
        self._saving: tuple[datetime, int] | None = None

    @property
    def _held_until(self) -> datetime | None:
        """When the last wait the API asked for ends (None: it never asked)."""
        return self._holds[-1][1] if self._holds else None

    @property
    def agents(self) -> int:
        """How many agents are scheduled."""
        return len(self._order)

    @property
    def started(self) -> bool:
        """Whether a step was planned yet (the first one is at setup)."""
        return self._credited_at is not None

    def sync(self, agent_ids: Iterable[str]) -> None:
        """Schedule these agents (new ones first); forget the others."""
        wanted = dict.fromkeys(agent_ids)
        for agent_id in self._order.keys() - wanted.keys():
            del self._order[agent_id]
        for agent_id in wanted:
            if agent_id not in self._order:
                self._order[agent_id] = None
                self._order.move_to_end(agent_id, last=False)
                # A new agent is read at the next step.
                self._read_credit += 1

    def read_all(self) -> None:
        """Read every agent at the next step (as far as the budget goes)."""
        self._read_credit = float(self.agents)

    def hold(self, now: datetime, until: datetime) -> None:
        """Send nothing before `until`, then one request, then at the pace.

        A sliding window frees one request at a time: a burst when the wait
        ends would only meet the next 429.
        """
        self._request_credit = 1.0
        if self._holds and self._holds[-1][1] >= now:
            # The same wait, told again at a later step (or made longer).
            start, end = self._holds.pop()
            self._holds.append((start, max(end, until)))
        else:
            self._holds.append((now, until))

    def looks_allowed(self, pace: float | None) -> bool:
        """Whether the budget leaves room for the refresh watch's looks."""
        return pace is None or pace * 3600 >= LOOKS_NEED_PER_AGENT_HOUR * max(
            self.agents, 1
        )

    def plan(
        self,
        now: datetime,
        due_looks: list[str],
        pace: float | None,
        *,
        sustained: float | None,
        probe: bool,
        looking: Mapping[str, datetime] | None = None,
        spare: float = 0.0,
        room: float = 0.0,
    ) -> tuple[list[str], list[str]]:
        """Return the looks and the reads to send now.

        `pace` is the requests per second the budget allows now, `sustained`
        what it allows in the long run (None: no limit known); `probe`: the
        API failed last time, so read one agent only. Within a budget, agents
        `looking` (a look planned within the effective interval) are read by
        that look, and one request is kept in hand for a look that falls due.
        `spare`: requests the budget allows at once beyond its pace (used
        when a budget is first known, before anything waited for it).
        `room`: requests the API lets go at once now (what an announced
        window has left): the looks due take it rather than the pace's.
        """
        left = 0.0 if pace is None else self._left_for_reads(sustained or pace)
        self._looking = (
            self._read_by_looks(looking, left) if looking and left > 0 else frozenset()
        )
        self._look_horizon = (
            self._reads_interval(0, left) if left > 0 else self.interval
        )
        self._credit(now, pace, spare)
        read_pace = self._read_pace(sustained)
        self.effective_interval = (
            timedelta(seconds=self._needing / read_pace)
            if read_pace > 0 and self._needing
            else self.interval
        )
        allowed = (
            len(due_looks) + self.agents
            if pace is None
            else max(math.floor(self._request_credit), 0)
        )
        on_room = self._room_beyond_credit(room)
        looks = [a for a in due_looks if a in self._order][
            : 0 if probe else max(allowed, on_room)
        ]
        for_reads = allowed - len(looks)
        if looks and len(looks) <= on_room:
            # An announced window has room for them now: they go on it, all
            # at once when agents refreshed together, and its pace (what it
            # has left, spread to its reset) leaves the reads less after.
            self._request_credit += len(looks)
            for_reads = allowed
        reserve = LOOK_RESERVE if self._looking else 0
        count = min(math.floor(self._read_credit), for_reads - reserve)
        if probe:
            # The API failed last time: one request tells whether it is back.
            count = min(max(count, 1), 1, allowed)
        elif pace is None:
            # Steps are a quarter interval apart: an agent whose interval has
            # passed (one a look read off the steps' beat, say) is read now
            # rather than at the next step.
            count = max(count, self._due_by(now))
        elif self._saving_at(now):
            # Requests that go together come next: the reads make room.
            count = 0
        reads: list[str] = []
        if count > 0:
            taken = set(looks) | self._looking
            for agent_id in self._order:
                if len(reads) >= count:
                    break
                if agent_id not in taken:
                    reads.append(agent_id)
        self._read_credit -= len(reads)
        self._looks_sent.extend(now for _ in looks)
        if pace is not None and reads and (read_at := self._order[reads[0]]):
            # A wait the API asked for holds every read back as long; the
            # reads are not late for it once it is over.
            self._note_late(
                now,
                now - read_at - self.effective_interval - self._held(read_at, now),
            )
        return looks, reads

    def _room_beyond_credit(self, room: float) -> int:
        """Return the requests a window's room holds beyond the credit the reads hold."""
        return math.floor(room - max(self._request_credit, 0.0))

    @property
    def look_horizon(self) -> timedelta:
        """How far ahead a look may read an agent for the reads: their longest interval."""
        return self._look_horizon

    def _read_by_looks(
        self, looking: Mapping[str, datetime], left: float
    ) -> frozenset[str]:
        """Return the agents that a look reads before their read would be due.

        They and the interval depend on each other: the more agents a look
        reads, the shorter the others' interval, and the fewer looks come
        within it. Taken in the order their looks come after their reads, as
        long as the others' interval still reaches the look: one consistent
        set, where the last step's interval made the set swing between all
        agents and none when many refresh together.
        """
        waits = sorted(
            (look - read_at, agent_id)
            for agent_id, look in looking.items()
            if (read_at := self._order.get(agent_id)) is not None
        )
        taken = 0
        while taken < len(waits) and waits[taken][0] <= self._reads_interval(
            taken + 1, left
        ):
            taken += 1
        return frozenset(agent_id for _, agent_id in waits[:taken])

    def _reads_interval(self, read_by_looks: int, left: float) -> timedelta:
        """Return the interval of the reads when looks read this many agents."""
        return max(
            self.interval, timedelta(seconds=(self.agents - read_by_looks) / left)
        )

    def save_for(self, now: datetime, requests: int, pace: float) -> bool:
        """Whether `requests` sent together (the agent list's pages) may go now.

        Sent at once with the reads at the pace, they would overrun a sliding
        window at its limit: the window that ends with them unless the pace
        saved for them before, the window that begins with them unless it
        pays for them after (`spent`). Until the credit is saved, the reads
        wait (looks still go); then the saved credit is theirs.
        """
        self._saving = (now, requests)
        # A budget learned from 429s: no window's spare to spend at once.
        self._credit(now, pace, 0.0)
        if self._request_credit < requests:
            return False
        self._saving = None
        self._spend(now, requests)
        return True

    def _saving_at(self, now: datetime) -> int:
        """Return the requests this step saves for (0: none)."""
        if self._saving is None or self._saving[0] != now:
            return 0
        return self._saving[1]

    def done(
        self,
        now: datetime,
        attempted: Iterable[str],
        held: Iterable[str],
        requests_sent: int,
    ) -> None:
        """Account for a step: the agents read (or failed), those held back."""
        # Every agent planned comes from this schedule.
        for agent_id in attempted:
            self._order[agent_id] = now
            self._order.move_to_end(agent_id)
        # Held back by the budget: still the oldest, read first once it allows.
        self._read_credit += len(list(held))
        self._request_credit -= requests_sent

    def next_step(self, now: datetime, pace: float | None) -> datetime:
        """When reads are next due (looks and staleness are the caller's)."""
        read_pace = self._read_pace(pace)
        if read_pace <= 0:
            return now + self.interval
        if pace is None:
            batch = max(
                1.0, min(self.agents, read_pace * self.step(pace).total_seconds())
            )
            need = max(batch - self._read_credit, 0.0) / read_pace
            when = now + timedelta(seconds=need)
            if (oldest := self._oldest_read()) is not None:
                when = min(when, oldest + self.interval)
            return max(when, now + MIN_STEP)
        need_reads = max(1 - self._read_credit, 0.0) / read_pace
        if saving := self._saving_at(now):
            # The reads wait for the credit that the saved requests need.
            need_reads = max(saving - self._request_credit, 0.0) / pace
        return max(now + timedelta(seconds=need_reads), self.next_request(now, pace))

    def step(self, pace: float | None) -> timedelta:
        """How far apart steps of reads are: wider while no limit is known."""
        return STEP if pace is not None else max(STEP, self.interval / UNLIMITED_STEPS)

    def next_request(
        self, now: datetime, pace: float | None, room: float = 0.0
    ) -> datetime:
        """When the budget next allows a request (a look waits for it too).

        `room`: what an announced window lets go at once; a look goes on it
        without waiting for the pace (see `plan`).
        """
        if not pace or self._room_beyond_credit(room) >= 1:
            # Unknown, or none left in this window: the budget holds requests
            # back until its reset, and the caller steps at that moment.
            return now + MIN_STEP
        wait = max(1 - self._request_credit, 0.0) / pace
        return now + max(timedelta(seconds=wait), MIN_STEP)

    def spent(self, now: datetime, requests: int) -> None:
        """Count requests the schedule did not plan (the agent list's pages).

        They take the requests' credit at once (the step's reads get what is
        left), and the reads get what the budget leaves in the long run, so
        that each agent is read within the effective interval that its
        reading's bound assumes.
        """
        if requests:
            self._spend(now, requests)

    def _spend(self, now: datetime, requests: int) -> None:
        """Take credit for requests the schedule did not plan; keep them for the rates.

        The credit saved for the agent list and the list's own pages count
        as one hold of the reads (see `read_lag`).
        """
        self._request_credit -= requests
        if self._unplanned and self._unplanned[-1][0] == now:
            requests += self._unplanned.pop()[1]
        self._unplanned.append((now, requests))

    def beyond_reads_rate(self, now: datetime) -> float:
        """Return the requests per second that were not reads, lately.

        The agent list is read hourly: its pages count over the whole window,
        from the first step on. The looks count over the time since the
        first step until the window has passed: a restart would otherwise
        show too short an effective interval for an hour.
        """
        since = now - RECENT_WINDOW
        while self._looks_sent and self._looks_sent[0] < since:
            self._looks_sent.popleft()
        while self._unplanned and self._unplanned[0][0] < since:
            self._unplanned.popleft()
        since_first = now - (self._first_step or now)
        looks_span = min(max(since_first, MIN_LOOK_SPAN), RECENT_WINDOW)
        pages = sum(requests for _, requests in self._unplanned)
        return len(self._looks_sent) / looks_span.total_seconds() + (
            pages / RECENT_WINDOW.total_seconds()
        )

    def read_lag(self, pace: float | None) -> timedelta:
        """How late after its interval an agent's read may come.

        One step of reads; within a budget also the time the agent list's
        pages, sent together, held the reads back (the reads catch up after),
        or, when longer, how late the oldest agent's read came lately: the
        reads' cycle follows the looks, which come when refreshes do, and
        drifts past the interval that the budget's pace alone gives.
        """
        step = self.step(pace)
        if not pace:
            return step
        burst = max((requests for _, requests in self._unplanned), default=0)
        late = self._late[0][1] if self._late else timedelta(0)
        return step + max(timedelta(seconds=burst / pace), late)

    def _held(self, since: datetime, now: datetime) -> timedelta:
        """How long the API had requests wait between `since` and `now`."""
        while len(self._holds) > 1 and self._holds[0][1] <= since:
            self._holds.popleft()
        return sum(
            (
                max(min(end, now) - max(start, since), timedelta(0))
                for start, end in self._holds
            ),
            timedelta(0),
        )

    def _note_late(self, now: datetime, late: timedelta) -> None:
        """Keep how late the oldest agent's read came, for the read lag."""
        while self._late and self._late[-1][1] <= late:
            self._late.pop()
        self._late.append((now, late))
        since = now - RECENT_WINDOW
        while self._late[0][0] < since:
            self._late.popleft()

    def _due_by(self, when: datetime) -> int:
        """How many agents, from the oldest, are due for a read by `when`."""
        due = 0
        for read_at in self._order.values():
            if read_at is not None and read_at + self.interval > when:
                break
            due += 1
        return due

    def _oldest_read(self) -> datetime | None:
        """Return the oldest read time (None: no agent, or one never read)."""
        return next(iter(self._order.values()), None)

    @property
    def _needing(self) -> int:
        """The agents that need interval reads (the others have a look coming)."""
        return self.agents - len(self._looking)

    def _read_pace(self, pace: float | None) -> float:
        """Agents read per second: the configured interval's, or what the budget leaves."""
        wanted = self._needing / self.interval.total_seconds()
        if pace is None or self._credited_at is None:
            return wanted
        return min(wanted, self._left_for_reads(pace))

    def _left_for_reads(self, pace: float) -> float:
        """Return the requests per second the budget leaves the reads."""
        if self._credited_at is None:
            return pace
        return max(
            pace - self.beyond_reads_rate(self._credited_at),
            pace * (1 - MAX_LOOK_SHARE),
        )

    def _credit(self, now: datetime, pace: float | None, spare: float) -> None:
        """Add the reads and requests the time since the last step allows."""
        elapsed = (
            0.0
            if self._credited_at is None
            else max((now - self._credited_at).total_seconds(), 0.0)
        )
        if self._credited_at is None:
            # The first step reads every agent (as far as the budget goes).
            self._read_credit = self.agents
            self._first_step = now
        self._credited_at = now
        read_pace = self._read_pace(pace)
        self._read_credit = min(
            self._read_credit + elapsed * read_pace, float(self.agents)
        )
        if pace is None:
            # Nothing known: once a limit is, a burst may follow its first block.
            self._request_credit = float(BURST)
            return
        cap = max(float(BURST), pace * STEP.total_seconds(), self._saving_at(now))
        if not self._paced and self._held_until is None:
            # A budget known before anything waited for it (its headers, at
            # setup): what it spares goes at once, the rest at its pace.
            self._paced = True
            self._request_credit = max(cap, spare)
            return
        self._paced = True
        if self._held_until is not None:
            # Only the time since the wait ended earns requests.
            since = max(self._held_until, now - timedelta(seconds=elapsed))
            elapsed = max((now - since).total_seconds(), 0.0)
        self._request_credit = min(self._request_credit + elapsed * pace, cap)
