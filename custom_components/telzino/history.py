"""Each agent's registration history: since when lost, how long, how reliable.

Home Assistant's own `last_changed` restarts with Home Assistant; this history
is stored, so "lost since 14:02" and the uptime ratios survive restarts. It
keeps observed time only: while Home Assistant is stopped, the API cannot be
read, the agent's status is unavailable or its registration is disabled in
Telzino, the agent is neither up nor down, and the ratios leave that time out.
"""

from bisect import bisect_right
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
import math
from operator import attrgetter
from typing import Any, Final, override

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER

DAY: Final = 86400.0
KEEP: Final = 30 * DAY
# Spans newer than this stay as read; older ones are merged into one per hour,
# which bounds a flapping agent's history (docs/how-it-works.md).
RAW_FOR: Final = DAY
MERGE_INTO: Final = 3600.0
STORAGE_VERSION: Final = 2
# Written at most this often while something changes, and at stop.
SAVE_DELAY: Final = 60
# Without changes the open spans grow too: written this often anyway.
SAVE_EVERY: Final = timedelta(minutes=15)
# Time-based values (ratios, losses aging out) are recomputed this often.
TICK: Final = timedelta(minutes=1)


class Reading(StrEnum):
    """What one reading says about an agent."""

    UP = "up"  # can receive calls
    DOWN = "down"  # cannot: a loss
    DISABLED = "disabled"  # registration disabled in Telzino: not a loss, unobserved
    UNOBSERVED = "unobserved"  # nothing known: stopped, API or status unavailable


@dataclass(frozen=True, slots=True)
class Span:
    """Observed time in [start, end): `up` and `down` seconds, the rest unobserved.

    `cum_up` and `cum_down` are the totals from the history's first span to
    this one's end, so that any window's total is a difference of two.
    """

    start: float
    end: float
    up: float
    down: float
    cum_up: float
    cum_down: float


_END = attrgetter("end")


class AgentHistory:
    """One agent's observed time over the last 30 days, and its losses."""

    def __init__(self) -> None:
        """Start with nothing observed."""
        self.spans: list[Span] = []
        self.reading = Reading.UNOBSERVED
        # When the current reading began; the open span runs from there.
        self.since: float | None = None
        # When the current loss began (kept across restarts and unobserved time).
        self.lost_since: float | None = None
        # How long the last finished loss lasted, in seconds.
        self.last_outage: float | None = None
        self.loss_starts: deque[float] = deque()
        # Spans before this index are merged by hour.
        self._merged_until = 0

    def observe(self, reading: Reading, now: float) -> bool:
        """Record a reading; return whether it changed anything."""
        if reading is self.reading:
            return False
        self._close(now)
        if reading is Reading.DOWN and self.lost_since is None:
            self.lost_since = now
            self.loss_starts.append(now)
        elif reading in (Reading.UP, Reading.DISABLED) and self.lost_since is not None:
            # Back, or disabled (which is not a loss): the outage is over.
            self.last_outage = now - self.lost_since
            self.lost_since = None
        self.reading = reading
        self.since = now if reading in (Reading.UP, Reading.DOWN) else None
        self.compact(now)
        return True

    def uptime(self, window: float, now: float) -> float | None:
        """Share of the observed time in the last `window` s the agent was up.

        None when nothing was observed in the window: unknown, not 100 %.
        """
        up, down = self._window(window, now)
        observed = up + down
        return up / observed if observed > 0 else None

    def observed(self, window: float, now: float) -> float:
        """Observed seconds in the last `window` s."""
        return sum(self._window(window, now))

    def _window(self, window: float, now: float) -> tuple[float, float]:
        """Up and down seconds in the last `window` s."""
        up_now, down_now = self._totals_at(now)
        up_then, down_then = self._totals_at(now - window)
        return up_now - up_then, down_now - down_then

    def losses(self, window: float, now: float) -> int:
        """Losses that began in the last `window` s (at most a day)."""
        return len(self.loss_starts) - bisect_right(self.loss_starts, now - window)

    def compact(self, now: float) -> None:
        """Merge spans older than a day by hour; drop what is older than 30 days."""
        spans = self.spans
        cutoff = now - RAW_FOR
        read = write = self._merged_until
        while read < len(spans) and spans[read].end <= cutoff:
            span = spans[read]
            previous = spans[write - 1] if write else None
            if previous is not None and _hour(previous.start) == _hour(span.start):
                spans[write - 1] = Span(
                    previous.start,
                    span.end,
                    previous.up + span.up,
                    previous.down + span.down,
                    span.cum_up,
                    span.cum_down,
                )
            else:
                spans[write] = span
                write += 1
            read += 1
        del spans[write:read]
        expired = bisect_right(spans, now - KEEP, key=_END)
        del spans[:expired]
        self._merged_until = write - expired
        while self.loss_starts and self.loss_starts[0] <= now - DAY:
            self.loss_starts.popleft()

    def summary(self, now: float) -> dict[str, Any]:
        """Summarize for diagnostics: counts and durations, no old timestamps."""
        windows = {"24h": DAY, "7d": 7 * DAY, "30d": KEEP}
        return {
            "reading": self.reading,
            "spans": len(self.spans),
            "spans_merged_by_hour": self._merged_until,
            "observed_s": {
                name: round(self.observed(window, now))
                for name, window in windows.items()
            },
            "uptime": {
                name: self.uptime(window, now) for name, window in windows.items()
            },
            "losses_24h": self.losses(DAY, now),
            "lost_for_s": None
            if self.lost_since is None
            else round(now - self.lost_since),
            "last_outage_s": self.last_outage,
        }

    def as_stored(self, now: float) -> dict[str, Any]:
        """Return what is stored: the open span counts as observed until now."""
        spans = [[s.start, s.end, s.up, s.down] for s in self.spans]
        if self.since is not None and now > self.since:
            up = self.reading is Reading.UP
            seconds = now - self.since
            spans.append(
                [self.since, now, seconds if up else 0.0, 0.0 if up else seconds]
            )
        return {
            "spans": [[round(value, 1) for value in span] for span in spans],
            "lost_since": self.lost_since,
            "last_outage": self.last_outage,
            "loss_starts": list(self.loss_starts),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], now: float) -> AgentHistory:
        """Rebuild a history; raise ValueError, TypeError or KeyError if unusable."""
        history = cls()
        cum_up = cum_down = 0.0
        last_end = -math.inf
        for values in stored["spans"]:
            start, end, up, down = (float(value) for value in values)
            if not last_end <= start <= end or min(up, down) < 0:
                raise ValueError("spans out of order")
            cum_up += up
            cum_down += down
            history.spans.append(Span(start, end, up, down, cum_up, cum_down))
            last_end = end
        history.lost_since = _optional_float(stored["lost_since"])
        history.last_outage = _optional_float(stored["last_outage"])
        history.loss_starts.extend(sorted(float(t) for t in stored["loss_starts"]))
        history.compact(now)
        return history

    def _close(self, now: float) -> None:
        """End the open span (if any) at `now`."""
        if self.since is None or now <= self.since:
            return
        seconds = now - self.since
        up, down = (seconds, 0.0) if self.reading is Reading.UP else (0.0, seconds)
        last = self.spans[-1] if self.spans else None
        cum_up = (last.cum_up if last else 0.0) + up
        cum_down = (last.cum_down if last else 0.0) + down
        self.spans.append(Span(self.since, now, up, down, cum_up, cum_down))

    def _totals_at(self, when: float) -> tuple[float, float]:
        """Up and down seconds from the history's start until `when`."""
        spans = self.spans
        index = bisect_right(spans, when, key=_END)
        if index:
            up, down = spans[index - 1].cum_up, spans[index - 1].cum_down
        elif spans:
            up = spans[0].cum_up - spans[0].up
            down = spans[0].cum_down - spans[0].down
        else:
            up = down = 0.0
        if index < len(spans) and spans[index].start < when:
            # A window edge inside a merged span: assume its time evenly spread.
            span = spans[index]
            part = (when - span.start) / (span.end - span.start)
            up += span.up * part
            down += span.down * part
        if self.since is not None and when > self.since:
            if self.reading is Reading.UP:
                up += when - self.since
            else:
                down += when - self.since
        return up, down


def _hour(when: float) -> int:
    return int(when // MERGE_INTO)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


class HistoryStore(Store[dict[str, Any]]):
    """The histories of one config entry's agents."""

    @override
    async def _async_migrate_func(
        self,
        old_major_version: int,
        old_minor_version: int,
        old_data: dict[str, Any],
    ) -> dict[str, Any]:
        """Version 1 kept one [start, end, up] interval per reading."""
        agents = {}
        for agent_id, stored in old_data["agents"].items():
            spans = [
                [start, end, end - start if up else 0.0, 0.0 if up else end - start]
                for start, end, up in stored["intervals"]
            ]
            lost_since = stored.get("lost_since")
            agents[agent_id] = {
                "spans": spans,
                "lost_since": lost_since,
                "last_outage": None,
                "loss_starts": [lost_since] if lost_since is not None else [],
            }
        return {"agents": agents}


class TelzinoHistory:
    """The histories of one entry's agents: loaded, recorded, stored."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is read until async_load."""
        self.hass = hass
        self.agents: dict[str, AgentHistory] = {}
        self._store = HistoryStore(hass, STORAGE_VERSION, storage_key(entry_id))
        self._listeners: list[CALLBACK_TYPE] = []
        self._save_pending = False
        self._saved_at = 0.0

    async def async_load(self) -> None:
        """Load the stored histories; a bad file starts afresh, with one warning."""
        now = _now()
        try:
            stored = await self._store.async_load()
            agents = (stored or {"agents": {}})["agents"]
            self.agents = {
                str(agent_id): AgentHistory.from_stored(history, now)
                for agent_id, history in agents.items()
            }
        except (
            HomeAssistantError,
            AttributeError,
            KeyError,
            TypeError,
            ValueError,
        ) as err:
            # Unusable content, a failed migration, or a file of a newer version.
            LOGGER.warning(
                "The stored registration history could not be read (%s: %s); "
                "starting a new one",
                type(err).__name__,
                err,
            )
            self.agents = {}

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Tick every minute and save at stop; return the callback that ends both."""
        stop_ticks = async_track_time_interval(self.hass, self._async_tick, TICK)

        @callback
        def save_at_stop(_event: Event) -> None:
            # A pending save is written at Home Assistant's final write.
            self._schedule_save()

        stop_listening = self.hass.bus.async_listen(
            EVENT_HOMEASSISTANT_STOP, save_at_stop
        )

        @callback
        def stop() -> None:
            stop_ticks()
            stop_listening()

        return stop

    async def async_unload(self) -> None:
        """Save now: the entry is unloaded (reloaded, or its options changed)."""
        await self._store.async_save(self._data_to_save())

    def get(self, agent_id: str) -> AgentHistory:
        """Return an agent's history, a new one if it has none yet."""
        if (history := self.agents.get(agent_id)) is None:
            history = self.agents[agent_id] = AgentHistory()
        return history

    def record(self, readings: Mapping[str, Reading]) -> None:
        """Record one reading per agent; agents not in `readings` are forgotten."""
        now = _now()
        changed = False
        for agent_id in self.agents.keys() - readings.keys():
            del self.agents[agent_id]
            changed = True
        for agent_id, reading in readings.items():
            changed |= self.get(agent_id).observe(reading, now)
        if changed:
            self._schedule_save()

    def record_unobserved(self) -> None:
        """Nothing can be read now: every agent is unobserved from now on."""
        self.record(dict.fromkeys(self.agents, Reading.UNOBSERVED))

    async def async_remove(self) -> None:
        """Delete the stored file (the entry was removed)."""
        await self._store.async_remove()

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` every minute; return the callback that stops it."""
        self._listeners.append(update)
        return lambda: self._listeners.remove(update)

    @callback
    def _async_tick(self, when: datetime) -> None:
        now = when.timestamp()
        for history in self.agents.values():
            history.compact(now)
        if now - self._saved_at >= SAVE_EVERY.total_seconds():
            self._schedule_save()
        for update in list(self._listeners):
            update()

    def _schedule_save(self) -> None:
        # Once pending, later changes ride along: a flapping agent cannot keep
        # postponing the write.
        if not self._save_pending:
            self._save_pending = True
            self._store.async_delay_save(self._data_to_save, SAVE_DELAY)

    def _data_to_save(self) -> dict[str, Any]:
        self._save_pending = False
        now = _now()
        self._saved_at = now
        return {
            "agents": {
                agent_id: history.as_stored(now)
                for agent_id, history in self.agents.items()
            }
        }


def storage_key(entry_id: str) -> str:
    """Return the storage key of an entry's histories."""
    return f"{DOMAIN}.history.{entry_id}"


def _now() -> float:
    return dt_util.utcnow().timestamp()
