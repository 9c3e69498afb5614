"""Expiry-aware polling: look at an agent right after its registration refresh.

OpenSIPS refreshes a registration at the first tick of its timer after the
refresh point, shortly before the binding expires, and most losses (PBX down,
password changed, registrar errors) appear at that moment. The API's
`lastRegisterSent` is the tick that sent the last REGISTER, so once one refresh
has been seen, the offset between `expires` and the refresh is known and the
next one is predicted to the second. A watch then costs one request just after
the predicted refresh, and one more after the SIP transaction timeout if the
reply is still pending, instead of polling fast all the time.
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final, cast

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time

from .api import RegistrationState, RegistrationStatus

# Never look at one agent more often than this.
MIN_SPACING: Final = timedelta(seconds=5)
# After the predicted REGISTER: time for the registrar's reply to arrive.
REPLY_MARGIN: Final = timedelta(seconds=3)
# A SIP transaction without a reply gives up after 32 s (64 x T1).
TRANSACTION_TIMEOUT: Final = timedelta(seconds=32)
# When the refresh is later than predicted: look again this often, this many times.
PROBE_STEP: Final = timedelta(seconds=10)
MAX_PROBES: Final = 3
# Refreshes happen within [expires - 2 x timer, expires + timer] (timer 100 s
# by default); offsets outside a generous band are not learned.
MAX_OFFSET: Final = timedelta(minutes=10)
# An expiry further ahead than this (or with no lifetime known, than a day) is
# not trusted: the watch falls back to plain interval polling.
EXPIRY_HORIZON_FACTOR: Final = 2
DEFAULT_HORIZON: Final = timedelta(days=1)
# Built once: the comparisons with it run for every agent at every poll.
_ZERO: Final = timedelta()

PENDING_STATES: Final = frozenset(
    {RegistrationState.REGISTERING, RegistrationState.AUTHENTICATING}
)


@dataclass(slots=True)
class _AgentWatch:
    """What the watch knows of one agent."""

    last_register_sent: datetime | None = None
    expires: datetime | None = None
    registered: bool = False
    # Learned: refresh time - expires, and the time between two refreshes.
    offset: timedelta | None = None
    period: timedelta | None = None
    probes: int = 0
    planned: datetime | None = None
    cancel: CALLBACK_TYPE | None = None


class RefreshWatch:
    """Schedules single-agent polls around each agent's predicted refresh."""

    def __init__(
        self, hass: HomeAssistant, poll_agent: Callable[[str], Awaitable[None]]
    ) -> None:
        """Poll agents with `poll_agent`, which reports back through `observe`."""
        self._hass = hass
        self._poll_agent = poll_agent
        self._agents: dict[str, _AgentWatch] = {}
        self.paused_until: datetime | None = None
        # When the coordinator polls every agent next; a look just before it
        # would only duplicate it.
        self.next_interval_poll: datetime | None = None
        # For diagnostics and the benchmark.
        self.polls = 0

    def observe(
        self, agent_id: str, status: RegistrationStatus | None, now: datetime
    ) -> None:
        """Learn from a reading of any source and plan the agent's next look."""
        # Every poll observes every agent: no new object for a known one.
        if (watch := self._agents.get(agent_id)) is None:
            watch = self._agents[agent_id] = _AgentWatch()
        if status is None:
            self._cancel(watch)
            return
        refreshed = (
            status.last_register_sent is not None
            and status.last_register_sent != watch.last_register_sent
        )
        if refreshed and watch.last_register_sent is not None and watch.registered:
            self._learn(watch, status)
        if refreshed:
            watch.probes = 0
        watch.last_register_sent = status.last_register_sent
        watch.registered = status.is_registered
        watch.expires = self._trusted_expiry(status, now)
        when = self._next_look(watch, status, refreshed, now)
        self._plan(
            agent_id, watch, None if when is None else max(when, now + MIN_SPACING)
        )

    def retry(self, agent_id: str, now: datetime) -> None:
        """Look once more after a look failed (the API did not answer).

        A refresh may be pending behind the failure: the next look comes after
        a SIP transaction's timeout, at most MAX_PROBES times in a row.
        """
        watch = self._agents.get(agent_id)
        if watch is None or watch.probes >= MAX_PROBES:
            return
        watch.probes += 1
        self._plan(agent_id, watch, now + TRANSACTION_TIMEOUT + REPLY_MARGIN)

    def retain(self, agent_ids: Iterable[str]) -> None:
        """Stop watching agents that are no longer polled."""
        keep = set(agent_ids)
        for agent_id in self._agents.keys() - keep:
            self._cancel(self._agents.pop(agent_id))

    def pause(self, until: datetime) -> None:
        """Send nothing before `until` (the API rate limited us)."""
        self.paused_until = until
        for watch in self._agents.values():
            self._cancel(watch)

    @callback
    def stop(self) -> None:
        """Cancel every planned look."""
        for watch in self._agents.values():
            self._cancel(watch)

    def _learn(self, watch: _AgentWatch, status: RegistrationStatus) -> None:
        """Learn from a refresh of a registered binding, as seen now."""
        sent = cast("datetime", status.last_register_sent)
        if watch.expires is not None and abs(sent - watch.expires) <= MAX_OFFSET:
            watch.offset = sent - watch.expires
        period = sent - cast("datetime", watch.last_register_sent)
        if _ZERO < period <= self._horizon(status):
            watch.period = period

    def _next_look(
        self,
        watch: _AgentWatch,
        status: RegistrationStatus,
        refreshed: bool,
        now: datetime,
    ) -> datetime | None:
        if status.state in PENDING_STATES and status.last_register_sent is not None:
            # Reply pending: look once the transaction has timed out.
            return status.last_register_sent + TRANSACTION_TIMEOUT + REPLY_MARGIN
        if not status.is_registered or watch.expires is None:
            # Lost, disabled or without a usable expiry: interval polling only.
            return None
        if watch.period is not None and status.last_register_sent is not None:
            # Ticks are periodic: the next refresh is one period after this one.
            predicted = status.last_register_sent + watch.period
        else:
            predicted = watch.expires + (watch.offset or _ZERO)
        if predicted + REPLY_MARGIN > now:
            return predicted + REPLY_MARGIN
        if not refreshed and watch.probes < MAX_PROBES:
            # Due, but no REGISTER yet: a little later than predicted.
            watch.probes += 1
            return now + PROBE_STEP
        return None

    def _trusted_expiry(
        self, status: RegistrationStatus, now: datetime
    ) -> datetime | None:
        expires = status.expires
        if expires is None or expires <= now - MAX_OFFSET:
            return None
        return expires if expires - now <= self._horizon(status) else None

    @staticmethod
    def _horizon(status: RegistrationStatus) -> timedelta:
        """How far ahead an expiry or a refresh period is plausible."""
        if status.registration_interval:
            return _horizon_of(status.registration_interval)
        return DEFAULT_HORIZON

    def _plan(self, agent_id: str, watch: _AgentWatch, when: datetime | None) -> None:
        """Plan the agent's next look; an unchanged plan keeps its timer."""
        if when is not None and self.paused_until is not None:
            when = max(when, self.paused_until)
        if (
            when is not None
            and self.next_interval_poll is not None
            and _ZERO <= self.next_interval_poll - when < MIN_SPACING
        ):
            # The interval poll looks a moment later; it plans the next look.
            when = None
        if watch.cancel is not None and watch.planned == when:
            return
        self._cancel(watch)
        if when is None:
            return

        async def look(_now: datetime) -> None:
            watch.cancel = None
            watch.planned = None
            self.polls += 1
            await self._poll_agent(agent_id)

        watch.planned = when
        watch.cancel = async_track_point_in_utc_time(
            self._hass, HassJob(look, f"telzino refresh watch {agent_id}"), when
        )

    @staticmethod
    def _cancel(watch: _AgentWatch) -> None:
        if watch.cancel is not None:
            watch.cancel()
            watch.cancel = None
        watch.planned = None


@lru_cache(maxsize=64)
def _horizon_of(registration_interval: int) -> timedelta:
    # Agents share a handful of registration intervals.
    return timedelta(seconds=registration_interval * EXPIRY_HORIZON_FACTOR)
