"""Polls the registration status of the watched Telzino agents."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple, NoReturn, Self, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HassJob, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    Agent,
    RegistrationState,
    RegistrationStatus,
    TelzinoAuthenticationError,
    TelzinoClient,
    TelzinoConnectionError,
    TelzinoError,
    TelzinoForbiddenError,
    TelzinoInvalidResponseError,
    TelzinoNotFoundError,
    TelzinoRateLimitedError,
)
from .const import (
    AGENT_LIST_REFRESH,
    AGENT_LIST_RETRY,
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_SCAN_INTERVAL,
    CONF_WATCH_REFRESH,
    DASHBOARD_URL,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    ISSUE_AGENT_NOT_FOUND,
    ISSUE_CLOCK_OFFSET,
    ISSUE_REQUEST_BUDGET,
    ISSUE_WRONG_CREDENTIALS,
    LOGGER,
    REFRESH_GRACE,
    REFRESH_REPLY_GRACE,
)
from .history import Reading, TelzinoHistory
from .schedule import MIN_STEP, STEP, ReadSchedule
from .store import AccountStore, agents_to_store
from .watch import DEFAULT_TIMER, REPLY_MARGIN, TICK_SLACK, RefreshWatch, next_attempt

type TelzinoConfigEntry = ConfigEntry[TelzinoCoordinator]

# A step may come this much after its moment; a reading is current for its
# effective interval, one step of reads and this.
READ_SLACK: Final = timedelta(seconds=5)
# An agent not read in its round keeps a provably current reading at most
# this many effective intervals.
STALE_INTERVALS: Final = 3
# While the API fails, one request this often asks whether it is back.
OUTAGE_PROBE: Final = timedelta(seconds=15)
# A repair issue when the budget stretches the interval past this factor ...
BUDGET_ISSUE_FACTOR: Final = 2
# ... and when this host's clock is this far from Telzino's.
CLOCK_ISSUE_OFFSET: Final = timedelta(minutes=5)

# OpenSIPS refreshes a binding by registering again; until the old binding
# expires the agent still receives calls.
REFRESH_STATES: Final = frozenset(
    {RegistrationState.REGISTERING, RegistrationState.AUTHENTICATING}
)


@dataclass(frozen=True, slots=True)
class StatusError:
    """Why an agent's status could not be read.

    Unlike the exception it comes from, it compares by value: two polls that
    fail the same way are equal, so they write no state.
    """

    kind: type[TelzinoError]
    message: str

    @classmethod
    def from_exception(cls, err: TelzinoError) -> Self:
        """Keep the error's class and message."""
        return cls(type(err), str(err))

    @override
    def __str__(self) -> str:
        """Return the error as a log line or diagnostics show it."""
        return f"{self.kind.__name__}: {self.message}"


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentData:
    """What the last poll learned about one agent."""

    name: str
    # None when this agent's status could not be fetched: its entities are
    # unavailable rather than stale.
    status: RegistrationStatus | None
    error: StatusError | None = None
    # What "Registered" means: the agent receives calls now. True while
    # registered, and during a refresh until its REGISTER is answered or has
    # timed out.
    can_receive_calls: bool = False

    @property
    def reading(self) -> Reading:
        """What this poll adds to the agent's history."""
        if self.status is None:
            return Reading.UNOBSERVED
        if (
            self.status.enabled is False
            or self.status.state is RegistrationState.UNREGISTERING
        ):
            # Being disabled in Telzino (unREGISTER first): a choice, not a loss.
            return Reading.DISABLED
        return Reading.UP if self.can_receive_calls else Reading.DOWN


class _LastRead(NamedTuple):
    """An agent's last reading, as far as how long it may be shown."""

    at: datetime
    # The effective interval it was read in.
    interval: timedelta
    # Until when it provably stays what OpenSIPS has (None: not known).
    stays_until: datetime | None


@dataclass(slots=True)
class _Binding:
    """A binding seen registered, which may take calls while not registered."""

    agent_id: str
    # When it was last seen registered, and its lastRegisterSent then (on the
    # API's clock, as the API gave it).
    seen: datetime
    sent: datetime | None
    # Whether a refresh of it was seen under way.
    refreshing: bool = False
    # When a reload that met its refresh must have registered it again.
    reregister_by: datetime | None = None
    # Until when the last reading still means it takes calls.
    holds_until: datetime | None = None


def issue_id(kind: str, agent_id: str) -> str:
    """Return the repair issue ID of one agent (agent IDs are unique across entries)."""
    return f"{kind}_{agent_id}"


class TelzinoCoordinator(DataUpdateCoordinator[dict[str, AgentData]]):
    """One coordinator per Telzino account; data is keyed by agent ID."""

    config_entry: TelzinoConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: TelzinoConfigEntry, client: TelzinoClient
    ) -> None:
        """Read what to watch from the entry's options."""
        self.scan_interval = timedelta(
            seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
        )
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=self.scan_interval,
            # Most polls change nothing; then no entity needs to hear about it.
            always_update=False,
        )
        self.client = client
        self.all_agents: bool = entry.options.get(CONF_ALL_AGENTS, False)
        self.watched: list[str] = list(entry.options.get(CONF_AGENTS, []))
        # Every agent of the account by ID, from the last list pass.
        self.account_agents: dict[str, Agent] = {}
        self._agents_listed_at: datetime | None = None
        self._agent_list_held_until: datetime | None = None
        # What the last agent list cost (its pages): the next one goes once
        # the budget's pace has saved as many.
        self._agent_list_requests = 0
        self._agents_unavailable: set[str] = set()
        # The bindings seen registered, which may still take calls while the
        # agent is not registered (a refresh in progress, a reload).
        self._bindings: dict[str, _Binding] = {}
        # Extra single-agent polls around predicted refreshes (an option).
        self.watch: RefreshWatch | None = (
            RefreshWatch() if entry.options.get(CONF_WATCH_REFRESH, True) else None
        )
        # One scheduler for every request: looks first, then the oldest reads.
        self.schedule = ReadSchedule(self.scan_interval)
        self._synced_watched: list[str] | None = None
        self._next_step = dt_util.utcnow() + self.scan_interval
        self._scheduled = False
        self._step_job = HassJob(
            self._async_scheduled_step,
            f"{entry.title} step",
            cancel_on_shutdown=True,
        )
        self._last_read: dict[str, _LastRead] = {}
        self._next_expiry: datetime | None = None
        self._expiry_interval: timedelta | None = None
        self._budget_issue = False
        self._clock_issue = False
        self._budget_figures: tuple[int, int | None] | None = None
        self.budget_signal = f"{DOMAIN}_{entry.entry_id}_budget"
        self.history = TelzinoHistory(hass, entry.entry_id)
        self.store = AccountStore(hass, entry.entry_id)
        self._stored_budget: tuple[Any, ...] | None = None

    async def async_restore(self) -> None:
        """Start from the agents and budget stored by the last run.

        So that a reload or restart whose agent list is refused, or that
        meets a rate limit, reads the agents it knew at the pace it learned.
        """
        agents, budget = await self.store.async_load()
        self.client.budget.restore(budget)
        self._stored_budget = self._budget_to_store()
        if agents:
            self.account_agents = {agent.id: agent for agent in agents}
            if self.all_agents:
                self.watched = list(self.account_agents)

    async def async_save(self) -> None:
        """Store the agents and budget now (the entry unloads)."""
        await self.store.async_save(self._data_to_store())

    def _data_to_store(self) -> dict[str, Any]:
        return {
            "agents": agents_to_store(list(self.account_agents.values())),
            "budget": self.client.budget.learned(),
        }

    def _budget_to_store(self) -> tuple[Any, ...]:
        """Return what is worth writing when it changes: the rate, each 429's wait."""
        budget = self.client.budget
        return (budget.source, budget.limit_rate, budget.window, budget.rate_limited)

    @override
    async def _async_update_data(self) -> dict[str, AgentData]:
        """Run one step of the rolling schedule: the looks due, then the oldest reads.

        Agents not read in this step keep their last reading while it is
        provably current (see `_valid_until`); a 429 holds requests back and
        never makes an agent read in time unavailable.
        """
        now = dt_util.utcnow()
        if not self._scheduled:
            # Asked for (update_entity, a reload): every agent now, as far as
            # the budget goes, as polling integrations do.
            self.schedule.read_all()
        self._scheduled = False
        budget = self.client.budget
        sent_before = budget.sent
        # Unless the step succeeds and plans its own: an outage (or a failed
        # agent list) is probed this often, one request at a time.
        self._next_step = now + min(self.scan_interval, OUTAGE_PROBE)
        try:
            await self._async_refresh_agent_list(now)
        except TelzinoRateLimitedError as err:
            # Not again at the next step: each try spends requests (a page
            # at a time) that the reads need.
            self._agent_list_held_until = now + AGENT_LIST_RETRY
            LOGGER.debug("Agent list held back: %s", err)
        except TelzinoError as err:
            self._raise_update_failed(err)
        finally:
            self.schedule.spent(now, budget.sent - sent_before)
        sent_before = budget.sent
        watched_changed = self._synced_watched is not self.watched
        if watched_changed:
            self.schedule.sync(self.watched)
        pace, sustained = budget.pace(), budget.sustained()
        looks_allowed = self.watch is not None and self.schedule.looks_allowed(
            sustained
        )
        due = self.watch.due(now) if self.watch is not None and looks_allowed else []
        if len(due) > 1 and pace is not None:
            due = self._looks_in_turn(now, due, pace)
        # One request first, then the rest at what it shows: after a failure
        # whether the API is back; at setup whether it announces a budget
        # (the first round then goes at its pace rather than in one burst).
        probe = not self.last_update_success or (
            not self.schedule.started and pace is None
        )
        looking = (
            self.watch.looks_before(now + self.schedule.look_horizon)
            if self.watch is not None and looks_allowed and pace is not None
            else None
        )
        looks, reads = (
            self.schedule.plan(
                now,
                due,
                pace,
                sustained=sustained,
                probe=probe,
                looking=looking,
                spare=budget.spare(),
                room=budget.room(),
            )
            # While the API asked to wait, a step only retires stale readings.
            if budget.blocked_for() <= 0
            else ([], [])
        )
        results = (
            await self.client.get_registration_statuses([*looks, *reads])
            if looks or reads
            else {}
        )
        if (
            probe
            and results
            and all(
                isinstance(r, TelzinoError)
                and not isinstance(r, TelzinoRateLimitedError)
                for r in results.values()
            )
        ):
            # One agent can fail on its own: one more is asked before the
            # API is taken to be still out.
            self.schedule.done(now, results, (), budget.sent - sent_before)
            sent_before = budget.sent
            _, second = self.schedule.plan(
                now, [], budget.pace(), sustained=budget.sustained(), probe=True
            )
            results |= await self.client.get_registration_statuses(second)
        if probe and any(isinstance(r, RegistrationStatus) for r in results.values()):
            # The API answers: read every agent now, as far as the budget goes,
            # so that all entities come back together.
            self.schedule.done(now, results, (), budget.sent - sent_before)
            sent_before = budget.sent
            more_looks, more_reads = self.schedule.plan(
                now,
                [agent_id for agent_id in due if agent_id not in results],
                budget.pace(),
                sustained=budget.sustained(),
                probe=False,
                spare=budget.spare(),
            )
            looks += more_looks
            results |= await self.client.get_registration_statuses(
                [*more_looks, *more_reads]
            )
        held = [
            agent_id
            for agent_id, result in results.items()
            if isinstance(result, TelzinoRateLimitedError)
        ]
        for result in results.values():
            if isinstance(result, TelzinoAuthenticationError):
                self._raise_update_failed(result)
        # A look only looks: its failure is tried again (see the watch), and
        # the reads report what the API does.
        failed_looks = {
            agent_id
            for agent_id in looks
            if isinstance(results[agent_id], TelzinoError) and agent_id not in held
        }
        errors = [
            result
            for agent_id, result in results.items()
            if isinstance(result, TelzinoError)
            and not isinstance(result, TelzinoRateLimitedError)
            and agent_id not in failed_looks
        ]
        if (
            errors
            and len(errors) == len(results) - len(failed_looks)
            and not any(isinstance(error, TelzinoNotFoundError) for error in errors)
        ):
            # Nothing could be read: an API outage, logged once as such. The
            # agents stay first in line for when it answers again.
            self.schedule.done(now, (), results, budget.sent - sent_before)
            self._raise_update_failed(errors[0])
        self.schedule.done(
            now,
            (agent_id for agent_id in results if agent_id not in held),
            held,
            budget.sent - sent_before,
        )
        if (blocked := budget.blocked_for()) > 0:
            # After the step's requests are counted: one request once it ends.
            self.schedule.hold(now, now + timedelta(seconds=blocked))
        if self.watch is not None:
            # Before the readings plan the agents' next looks.
            for agent_id in looks:
                if agent_id not in held:
                    self.watch.taken(agent_id)
            for agent_id in failed_looks:
                self.watch.retry(agent_id, now)
        data = self._merge(
            now,
            {a: r for a, r in results.items() if a not in failed_looks},
            watched_changed,
        )
        self._plan_next_step(now, looks_allowed)
        self._update_budget_issue()
        self._update_clock_issue()
        if (stored := self._budget_to_store()) != self._stored_budget:
            self._stored_budget = stored
            self.store.async_save_later(self._data_to_store)
        return data

    def _merge(
        self,
        now: datetime,
        results: dict[str, RegistrationStatus | TelzinoError],
        watched_changed: bool,
    ) -> dict[str, AgentData]:
        """Return every watched agent's data after this step's readings."""
        previous = self.data or {}
        if watched_changed:
            data = {
                agent_id: previous.get(agent_id)
                or AgentData(name=self._agent_name(agent_id), status=None)
                for agent_id in self.watched
            }
            for agent_id in self._bindings.keys() - data.keys():
                del self._bindings[agent_id]
            for gone in self._last_read.keys() - data.keys():
                del self._last_read[gone]
            if self.watch is not None:
                self.watch.retain(data.keys())
            self._synced_watched = self.watched
        else:
            data = dict(previous)
        # Repair issues and logs follow changes: most steps change nothing.
        changed: dict[str, AgentData] = {}
        offset = self.client.server_clock.offset
        for agent_id, result in results.items():
            if isinstance(result, TelzinoRateLimitedError) or agent_id not in data:
                continue
            before = data[agent_id]
            agent = self._agent_data(agent_id, result, now, before, offset)
            if agent.status is not None:
                if self.watch is not None:
                    self.watch.observe(agent_id, agent.status, now)
                self._last_read[agent_id] = _LastRead(
                    now,
                    self.schedule.effective_interval,
                    self._predicted_change(
                        agent_id, agent.status, agent.can_receive_calls
                    ),
                )
            elif self.watch is not None:
                self.watch.observe(agent_id, None, now)
            if agent is not before:
                data[agent_id] = changed[agent_id] = agent
        interval = self.schedule.effective_interval
        if (
            watched_changed
            or interval != self._expiry_interval
            or (self._next_expiry is not None and now >= self._next_expiry)
            or any(agent_id in self._last_read for agent_id in changed)
        ):
            self._expire_readings(now, data, changed)
        self._log_agent_availability(changed)
        self._update_repair_issues(changed)
        return data

    def _predicted_change(
        self, agent_id: str, status: RegistrationStatus, can_receive_calls: bool
    ) -> datetime | None:
        """Until when a reading provably stays what OpenSIPS has; None: not at all.

        OpenSIPS changes a registered binding only at its refresh (or when the
        registration is disabled or reloaded); a binding that still holds
        without being registered (see `_binding_holds_until`) keeps taking
        calls until its deadline; a failed registration changes at its next
        attempt.
        """
        look_margin = REPLY_MARGIN + TICK_SLACK + STEP + READ_SLACK
        if status.is_registered:
            refresh = None if self.watch is None else self.watch.refresh_due(agent_id)
            return None if refresh is None else refresh + look_margin
        if can_receive_calls:
            return self._bindings[agent_id].holds_until
        attempt = self.next_attempt(agent_id, status)
        return None if attempt is None else attempt + look_margin

    def _looks_in_turn(self, now: datetime, due: list[str], pace: float) -> list[str]:
        """Return the looks due in the order they go: readings about to expire first.

        Looks queue at the budget's pace when many agents refresh together.
        Each reads its agent; in the order they fell due, an agent read long
        before could wait until its reading had expired. The others keep
        their turn: the order they fell due is the order of their refreshes,
        and so of the losses a look shows.
        """
        interval = self.schedule.effective_interval
        lag = self.schedule.read_lag(pace)
        # About when the last of them goes, the looks taking the whole pace.
        last = now + timedelta(seconds=len(due) / pace)

        def expiry(agent_id: str) -> datetime:
            if (read := self._last_read.get(agent_id)) is None:
                return last  # nothing shown to keep
            return min(self._valid_until(read, interval, lag), last)

        return sorted(due, key=expiry)

    @staticmethod
    def _valid_until(read: _LastRead, interval: timedelta, lag: timedelta) -> datetime:
        """How long an agent's last reading may be shown without a new read.

        Within its own interval, and the lag of a read (the reading is as
        fresh as polling makes it); beyond it (not read this round) only while
        it is provably current, and never for more than STALE_INTERVALS
        effective intervals. Its own interval is the one it was read in when
        that was longer: an interval that shrinks after (when looks read most
        agents at a common refresh) does not take back what a reading was
        promised, or an agent left to its look goes unavailable before it.
        """
        interval = max(interval, read.interval)
        own = read.at + interval + lag + READ_SLACK
        if read.stays_until is None:
            return own
        return max(own, min(read.stays_until, read.at + STALE_INTERVALS * interval))

    def _expire_readings(
        self, now: datetime, data: dict[str, AgentData], changed: dict[str, AgentData]
    ) -> None:
        """Make agents whose last reading is no longer current unavailable."""
        interval = self._expiry_interval = self.schedule.effective_interval
        lag = self.schedule.read_lag(self.client.budget.pace())
        next_expiry: datetime | None = None
        for agent_id, read in self._last_read.items():
            agent = data.get(agent_id)
            if agent is None or agent.status is None:
                continue
            until = self._valid_until(read, interval, lag)
            if now < until:
                next_expiry = until if next_expiry is None else min(next_expiry, until)
                continue
            data[agent_id] = changed[agent_id] = AgentData(
                name=agent.name,
                status=None,
                error=StatusError(
                    TelzinoRateLimitedError,
                    f"Not read since {dt_util.as_local(read.at):%H:%M:%S}: the "
                    "API's request budget allows no read sooner",
                ),
            )
        self._next_expiry = next_expiry

    def _plan_next_step(self, now: datetime, looks_allowed: bool) -> None:
        """Plan the next step: the next reads, look, expiry or the budget's reset."""
        budget = self.client.budget
        pace = budget.pace()
        when = self.schedule.next_step(now, pace)
        if looks_allowed and self.watch is not None:
            look = self.watch.next_look()
            if look is not None:
                request = self.schedule.next_request(now, pace, budget.room())
                when = min(when, max(look, request))
        if (blocked := budget.blocked_for()) > 0:
            # Nothing can be sent before; right after, what is due is.
            when = now + timedelta(seconds=blocked)
        if self._next_expiry is not None:
            when = min(when, self._next_expiry)
        self._next_step = max(when, now + MIN_STEP)

    async def _async_scheduled_step(self, _now: datetime | None = None) -> None:
        """Run the step the schedule planned (only what is due)."""
        self._scheduled = True
        await self._handle_refresh_interval()

    @callback
    @override
    def _schedule_refresh(self) -> None:
        """Run the next step when it is due, to the second.

        The base class rounds to whole seconds and a fixed interval; the
        rolling schedule and the refresh watch's looks need their moment.
        """
        if self.config_entry.pref_disable_polling:
            return
        self._async_unsub_refresh()
        self._unsub_refresh = async_track_point_in_utc_time(
            self.hass, self._step_job, self._next_step
        )

    def _update_budget_issue(self) -> None:
        """Raise a repair issue while the budget stretches the interval past twice."""
        effective = self.schedule.effective_interval
        limited = effective > BUDGET_ISSUE_FACTOR * self.scan_interval
        figures = self.budget_figures()
        if figures != self._budget_figures:
            self._budget_figures = figures
            async_dispatcher_send(self.hass, self.budget_signal)
        if limited == self._budget_issue:
            return
        self._budget_issue = limited
        if not limited:
            self._set_account_issue(ISSUE_REQUEST_BUDGET, placeholders=None)
            return
        agents = self.schedule.agents
        self._set_account_issue(
            ISSUE_REQUEST_BUDGET,
            placeholders={
                "account": self.config_entry.title,
                "agents": str(agents),
                "configured": str(round(self.scan_interval.total_seconds())),
                "effective": str(round(effective.total_seconds())),
                "needed": str(
                    round(agents * 3600 / self.scan_interval.total_seconds())
                ),
                "granted": str(figures[1] or 0),
                "configured_twice": str(
                    round(BUDGET_ISSUE_FACTOR * self.scan_interval.total_seconds())
                ),
            },
        )

    def _update_clock_issue(self) -> None:
        """Raise a repair issue while this host's clock is far from Telzino's.

        The API's times are moved onto this clock, so the signal holds; but
        they then differ from what Telzino shows, and every other time Home
        Assistant keeps (logs, history, automations) is off by as much.
        """
        offset = self.client.server_clock.offset
        off = abs(offset) > CLOCK_ISSUE_OFFSET.total_seconds()
        if off == self._clock_issue:
            return
        self._clock_issue = off
        if not off:
            self._set_account_issue(ISSUE_CLOCK_OFFSET, placeholders=None)
            return
        self._set_account_issue(
            ISSUE_CLOCK_OFFSET,
            placeholders={
                "account": self.config_entry.title,
                "minutes": str(round(abs(offset) / 60)),
            },
        )

    def _set_account_issue(
        self, kind: str, placeholders: dict[str, str] | None
    ) -> None:
        """Raise the account's repair issue of this kind, or clear it (None)."""
        issue = f"{kind}_{self.config_entry.entry_id}"
        if placeholders is None:
            ir.async_delete_issue(self.hass, DOMAIN, issue)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=kind,
            translation_placeholders=placeholders,
            data={"entry_id": self.config_entry.entry_id},
        )

    def budget_diagnostics(self) -> dict[str, Any]:
        """Return what the integration learned of the API's request budget."""
        budget = self.client.budget
        sustained = budget.sustained()
        return {
            "source": budget.source,
            "requests_per_hour": None if sustained is None else round(sustained * 3600),
            "window_s": budget.window,
            "remaining": budget.remaining,
            "blocked_for_s": round(budget.blocked_for(), 1),
            "requests_sent": budget.sent,
            "requests_rate_limited": budget.rate_limited,
            "configured_interval_s": self.scan_interval.total_seconds(),
            "effective_interval_s": round(
                self.schedule.effective_interval.total_seconds(), 1
            ),
            "read_lag_s": round(
                self.schedule.read_lag(budget.pace()).total_seconds(), 1
            ),
            "refresh_looks_allowed": self.schedule.looks_allowed(sustained),
            "requests_per_hour_beyond_reads": round(
                self.schedule.beyond_reads_rate(dt_util.utcnow()) * 3600, 1
            ),
        }

    def budget_figures(self) -> tuple[int, int | None]:
        """Return the effective interval (s) and the request budget (per hour, if known)."""
        sustained = self.client.budget.sustained()
        return (
            round(self.schedule.effective_interval.total_seconds()),
            None if sustained is None else round(sustained * 3600),
        )

    @callback
    @override
    def async_update_listeners(self) -> None:
        """Record what changed in the agents' history before entities read it.

        Every change reaches this: a poll whose data or success changed, and a
        refresh watch's look that changed an agent.
        """
        if self.last_update_success:
            self.history.record(
                {agent_id: agent.reading for agent_id, agent in self.data.items()}
            )
        else:
            self.history.record_unobserved()
        super().async_update_listeners()

    def next_attempt(
        self, agent_id: str, status: RegistrationStatus
    ) -> datetime | None:
        """When OpenSIPS will next try to register a failed agent, if known.

        From the refresh watch, which learns each agent's timer; without it,
        with OpenSIPS' default timer.
        """
        if self.watch is not None:
            return self.watch.next_attempt(agent_id)
        return next_attempt(status, timedelta(seconds=DEFAULT_TIMER), dt_util.utcnow())

    def _agent_data(
        self,
        agent_id: str,
        result: RegistrationStatus | TelzinoError,
        now: datetime,
        previous: AgentData | None,
        offset: float,
    ) -> AgentData:
        """Return what a reading says of an agent; `previous` if nothing changed.

        So a changed agent is one whose data is not the previous object. Its
        times are moved onto Home Assistant's clock: `offset` is how far the
        API's clock is ahead.
        """
        name = self._agent_name(agent_id)
        if isinstance(result, TelzinoError):
            agent = AgentData(
                name=name, status=None, error=StatusError.from_exception(result)
            )
        else:
            status = result.shifted(-offset)
            can_receive_calls = self._can_receive_calls(
                agent_id, status, now, result.last_register_sent
            )
            if (
                previous is not None
                # The client hands back the same status for an unchanged answer
                # (moved onto this clock, an equal one: compared below).
                and previous.status is status
                and previous.can_receive_calls is can_receive_calls
                and previous.name == name
            ):
                # Most polls: no new object, no field-by-field comparison.
                return previous
            agent = AgentData(
                name=name, status=status, can_receive_calls=can_receive_calls
            )
        return previous if agent == previous else agent

    def _can_receive_calls(
        self,
        agent_id: str,
        status: RegistrationStatus,
        now: datetime,
        api_sent: datetime | None,
    ) -> bool:
        """Tell whether the agent receives calls: registered, or its binding still holds.

        `status` is on Home Assistant's clock; `api_sent` is its
        lastRegisterSent as the API gave it (on the API's clock).
        """
        if status.is_registered:
            self._bindings[agent_id] = _Binding(agent_id, now, api_sent)
            return True
        binding = self._bindings.get(agent_id)
        if binding is not None:
            binding.holds_until = self._binding_holds_until(
                binding, status, now, api_sent
            )
            if binding.holds_until is not None and now < binding.holds_until:
                return True
            del self._bindings[agent_id]
        return False

    def _binding_holds_until(
        self,
        binding: _Binding,
        status: RegistrationStatus,
        now: datetime,
        api_sent: datetime | None,
    ) -> datetime | None:
        """Until when a binding seen registered still takes calls (None: it does not).

        - A refresh in progress (REGISTERING, AUTHENTICATING): until its
          REGISTER is answered or has timed out. Its start is known only from
          a lastRegisterSent later than the one seen while registered; one
          that did not move (an API that lags, or does not update it) says
          nothing, and a bounded grace from when it was last seen registered
          applies, as for none at all.
        - A reload that met a refresh still waiting for its reply
          (NOT_REGISTERED, enabled, before the binding's expiry, after a
          refresh was seen under way or was due): OpenSIPS registers it
          again at its next timer tick. That deadline is set at the first
          such reading; later ones do not move it.
        """
        if status.state in REFRESH_STATES:
            binding.refreshing = True
            sent = status.last_register_sent
            if (
                sent is not None
                and api_sent is not None
                and (binding.sent is None or api_sent > binding.sent)
            ):
                return sent + REFRESH_REPLY_GRACE
            return binding.seen + REFRESH_GRACE
        refresh_due = (
            None if self.watch is None else self.watch.refresh_due(binding.agent_id)
        )
        if (
            status.state is not RegistrationState.NOT_REGISTERED
            or status.enabled is False
            # A reload meets a refresh only while one is under way: seen, or
            # due by the binding's expiry. Otherwise (new SIP settings, say)
            # NOT_REGISTERED is no binding's refresh.
            or not (
                binding.refreshing or (refresh_due is not None and now >= refresh_due)
            )
        ):
            return None
        if binding.reregister_by is None:
            tick = (
                None
                if self.watch is None
                else self.watch.next_tick(binding.agent_id, now)
            )
            binding.reregister_by = (
                tick or now + timedelta(seconds=DEFAULT_TIMER)
            ) + REFRESH_REPLY_GRACE
        if status.expires is None:
            return binding.reregister_by
        return min(binding.reregister_by, status.expires)

    def _agent_name(self, agent_id: str) -> str:
        agent = self.account_agents.get(agent_id)
        return agent.name if agent else agent_id

    async def _async_refresh_agent_list(self, now: datetime) -> None:
        """Re-read the agent list (names, and with all_agents what to watch) hourly."""
        if (
            self._agents_listed_at is not None
            and now - self._agents_listed_at < AGENT_LIST_REFRESH
        ) or (
            self._agent_list_held_until is not None
            and now < self._agent_list_held_until
        ):
            return
        budget = self.client.budget
        if (
            self._agent_list_requests
            # A budget the API announces says what remains of it: the pages
            # go on what remains. One learned from 429s says nothing of its
            # window, which may slide: the reads make room for them.
            and not budget.announced
            and (pace := budget.pace()) is not None
            and not self.schedule.save_for(now, self._agent_list_requests, pace)
        ):
            return
        sent_before = budget.sent
        try:
            agents = await self.client.get_agents()
        except TelzinoRateLimitedError:
            # The next try needs at least as many.
            self._agent_list_requests = max(
                self._agent_list_requests, budget.sent - sent_before
            )
            raise
        except TelzinoForbiddenError:
            if self.all_agents:
                raise
            # Credentials that may not list agents still poll their statuses;
            # devices are then named by agent ID.
            agents = []
        except (TelzinoConnectionError, TelzinoInvalidResponseError) as err:
            if self._agents_listed_at is None and not self.account_agents:
                raise
            LOGGER.debug("Keeping the known agent names: %s", err)
            return
        self._agents_listed_at = now
        self._agent_list_requests = budget.sent - sent_before
        self.account_agents = {agent.id: agent for agent in agents}
        if self.all_agents:
            self.watched = list(self.account_agents)
        self.store.async_save_later(self._data_to_store)
        self._sync_devices()

    def _sync_devices(self) -> None:
        """Rename devices whose agent was renamed; drop devices of deleted agents."""
        registry = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(
            registry, self.config_entry.entry_id
        ):
            agent_id = next(
                (value for domain, value in device.identifiers if domain == DOMAIN),
                None,
            )
            if agent_id is None or agent_id == self.config_entry.entry_id:
                continue  # the account's own device
            agent = self.account_agents.get(agent_id)
            if agent is None:
                if self.all_agents:
                    LOGGER.info("Agent %s was deleted; removing its device", agent_id)
                    registry.async_remove_device(device.id)
                continue
            if device.name != agent.name:
                registry.async_update_device(device.id, name=agent.name)

    def _raise_update_failed(self, err: TelzinoError) -> NoReturn:
        """Raise the Home Assistant error that handles a client error."""
        if isinstance(err, TelzinoAuthenticationError):
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        if isinstance(err, TelzinoForbiddenError):
            key = "forbidden"
        elif isinstance(err, TelzinoInvalidResponseError):
            key = "invalid_response"
        else:
            key = "cannot_connect"
        raise UpdateFailed(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={"error": str(err)},
        ) from err

    def _log_agent_availability(self, data: dict[str, AgentData]) -> None:
        """Log once when an agent's status cannot be read, and once when it can again."""
        for agent_id, agent in data.items():
            if agent.error is not None and agent_id not in self._agents_unavailable:
                self._agents_unavailable.add(agent_id)
                LOGGER.warning(
                    "Status of agent %s (%s) is unavailable: %s",
                    agent.name,
                    agent_id,
                    agent.error,
                )
            elif agent.error is None and agent_id in self._agents_unavailable:
                self._agents_unavailable.discard(agent_id)
                LOGGER.info("Status of agent %s (%s) is back", agent.name, agent_id)

    def _update_repair_issues(self, data: dict[str, AgentData]) -> None:
        for agent_id, agent in data.items():
            wrong_credentials = (
                agent.status is not None
                and agent.status.state is RegistrationState.WRONG_CREDENTIALS
            )
            self._set_issue(
                ISSUE_WRONG_CREDENTIALS,
                agent_id,
                active=wrong_credentials,
                placeholders={"agent": agent.name, "dashboard_url": DASHBOARD_URL},
            )
            not_found = agent.error is not None and issubclass(
                agent.error.kind, TelzinoNotFoundError
            )
            if not_found and self.all_agents:
                # Deleted from the account: the next list pass removes its device.
                self._agents_listed_at = None
            self._set_issue(
                ISSUE_AGENT_NOT_FOUND,
                agent_id,
                active=not_found and not self.all_agents,
                placeholders={"agent": agent.name, "agent_id": agent_id},
                fixable=True,
            )

    def _set_issue(
        self,
        kind: str,
        agent_id: str,
        *,
        active: bool,
        placeholders: dict[str, str],
        fixable: bool = False,
    ) -> None:
        if not active:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, agent_id))
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(kind, agent_id),
            is_fixable=fixable,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=kind,
            translation_placeholders=placeholders,
            learn_more_url=None if fixable else DASHBOARD_URL,
            data={"entry_id": self.config_entry.entry_id, "agent_id": agent_id},
        )
