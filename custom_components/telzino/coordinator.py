"""Polls the registration status of the watched Telzino agents."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, NoReturn, Self, cast, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr, issue_registry as ir
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
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_SCAN_INTERVAL,
    CONF_WATCH_REFRESH,
    DASHBOARD_URL,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    ISSUE_AGENT_NOT_FOUND,
    ISSUE_WRONG_CREDENTIALS,
    LOGGER,
    MAX_SCAN_INTERVAL,
    REFRESH_GRACE,
    REFRESH_REPLY_GRACE,
)
from .history import Reading, TelzinoHistory
from .watch import DEFAULT_TIMER, RefreshWatch, next_attempt

type TelzinoConfigEntry = ConfigEntry[TelzinoCoordinator]

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
        self._rate_limit_streak = 0
        self._agents_unavailable: set[str] = set()
        # When each agent was last seen registered: a REGISTERING after it is
        # a refresh, not a loss.
        self._registered_at: dict[str, datetime] = {}
        # Extra single-agent polls around predicted refreshes (an option).
        self.watch: RefreshWatch | None = (
            RefreshWatch(hass, self._async_poll_agent)
            if entry.options.get(CONF_WATCH_REFRESH, True)
            else None
        )
        # Set when a watch poll was rate limited: nothing is sent before it.
        self._rate_limited_until: datetime | None = None
        self.history = TelzinoHistory(hass, entry.entry_id)

    @override
    async def _async_update_data(self) -> dict[str, AgentData]:
        """Fetch every watched agent's status in one concurrent batch."""
        now = dt_util.utcnow()
        if self._rate_limited_until is not None and now < self._rate_limited_until:
            # A watch poll was told to wait: so is the interval poll.
            remaining = (self._rate_limited_until - now).total_seconds()
            self._raise_update_failed(
                TelzinoRateLimitedError(
                    "Rate limited during a refresh watch", remaining
                )
            )
        try:
            await self._async_refresh_agent_list()
            results = await self.client.get_registration_statuses(self.watched)
        except TelzinoError as err:
            self._raise_update_failed(err)
        errors = [r for r in results.values() if isinstance(r, TelzinoError)]
        for error in errors:
            # The whole account is affected: the batch stopped at the first one.
            if isinstance(error, (TelzinoAuthenticationError, TelzinoRateLimitedError)):
                self._raise_update_failed(error)
        if (
            errors
            and len(errors) == len(results)
            and not any(isinstance(error, TelzinoNotFoundError) for error in errors)
        ):
            # Nothing could be read: an API outage, logged once as such.
            self._raise_update_failed(errors[0])
        self._rate_limit_streak = 0
        previous = self.data or {}
        data: dict[str, AgentData] = {}
        # Repair issues follow changes: most polls change nothing.
        changed: dict[str, AgentData] = {}
        for agent_id, result in results.items():
            before = previous.get(agent_id)
            agent = data[agent_id] = self._agent_data(agent_id, result, now, before)
            if agent is not before:
                changed[agent_id] = agent
        for agent_id in self._registered_at.keys() - results.keys():
            del self._registered_at[agent_id]
        if self.watch is not None:
            self.watch.next_interval_poll = now + self.scan_interval
            self.watch.retain(data.keys())
            for agent_id, agent in data.items():
                self.watch.observe(agent_id, agent.status, now)
        self._log_agent_availability(data)
        self._update_repair_issues(changed)
        return data

    async def _async_poll_agent(self, agent_id: str) -> None:
        """Poll one agent for the refresh watch; update only what changed.

        Listeners are called directly: `async_set_updated_data` would move the
        next interval poll, which the watch must neither delay nor replace.
        """
        # Only the watch calls this, and only when there is one.
        watch = cast("RefreshWatch", self.watch)
        if agent_id not in (self.data or {}):
            return
        now = dt_util.utcnow()
        try:
            status = await self.client.get_registration_status(agent_id)
        except TelzinoRateLimitedError as err:
            wait = err.retry_after or self.scan_interval.total_seconds()
            self._rate_limited_until = now + timedelta(seconds=wait)
            watch.pause(self._rate_limited_until)
            return
        except TelzinoError as err:
            # The interval poll reports failures; a watch only looks, again later.
            LOGGER.debug("Refresh watch of agent %s failed: %s", agent_id, err)
            watch.retry(agent_id, now)
            return
        watch.observe(agent_id, status, now)
        if not self.last_update_success:
            # The API answers again after a failed poll: poll every agent now,
            # which makes the entities available again, rather than at the
            # interval.
            await self.async_request_refresh()
            return
        agent = self._agent_data(agent_id, status, now, self.data[agent_id])
        if agent is not self.data[agent_id]:
            self.data = {**self.data, agent_id: agent}
            self._update_repair_issues({agent_id: agent})
            self.async_update_listeners()

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

    @override
    async def async_shutdown(self) -> None:
        """Cancel the refresh watch with the interval polls."""
        if self.watch is not None:
            self.watch.stop()
        await super().async_shutdown()

    def _agent_data(
        self,
        agent_id: str,
        result: RegistrationStatus | TelzinoError,
        now: datetime,
        previous: AgentData | None,
    ) -> AgentData:
        """Return what a reading says of an agent; `previous` if nothing changed.

        So a changed agent is one whose data is not the previous object.
        """
        name = self._agent_name(agent_id)
        if isinstance(result, TelzinoError):
            agent = AgentData(
                name=name, status=None, error=StatusError.from_exception(result)
            )
        else:
            can_receive_calls = self._can_receive_calls(agent_id, result, now)
            if (
                previous is not None
                # The client hands back the same status for an unchanged answer.
                and previous.status is result
                and previous.can_receive_calls is can_receive_calls
                and previous.name == name
            ):
                # Most polls: no new object, no field-by-field comparison.
                return previous
            agent = AgentData(
                name=name, status=result, can_receive_calls=can_receive_calls
            )
        return previous if agent == previous else agent

    def _can_receive_calls(
        self, agent_id: str, status: RegistrationStatus, now: datetime
    ) -> bool:
        """Tell whether the agent receives calls: registered, or refreshing in time."""
        if status.is_registered:
            self._registered_at[agent_id] = now
            return True
        if status.state in REFRESH_STATES and (
            seen := self._registered_at.get(agent_id)
        ):
            # A refresh of a binding seen registered: it is answered, or times
            # out, within a SIP transaction of its REGISTER.
            sent = status.last_register_sent
            if sent is not None and now < sent + REFRESH_REPLY_GRACE:
                return True
            if sent is None and now - seen < REFRESH_GRACE:
                return True
        self._registered_at.pop(agent_id, None)
        return False

    def _agent_name(self, agent_id: str) -> str:
        agent = self.account_agents.get(agent_id)
        return agent.name if agent else agent_id

    async def _async_refresh_agent_list(self) -> None:
        """Re-read the agent list (names, and with all_agents what to watch) hourly."""
        now = dt_util.utcnow()
        if (
            self._agents_listed_at is not None
            and now - self._agents_listed_at < AGENT_LIST_REFRESH
        ):
            return
        try:
            agents = await self.client.get_agents()
        except TelzinoForbiddenError:
            if self.all_agents:
                raise
            # Credentials that may not list agents still poll their statuses;
            # devices are then named by agent ID.
            agents = []
        except (TelzinoConnectionError, TelzinoInvalidResponseError) as err:
            if self._agents_listed_at is None:
                raise
            LOGGER.debug("Keeping the known agent names: %s", err)
            return
        self._agents_listed_at = now
        self.account_agents = {agent.id: agent for agent in agents}
        if self.all_agents:
            self.watched = list(self.account_agents)
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
            if agent_id is None:
                continue
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
        if isinstance(err, TelzinoRateLimitedError):
            retry_after = err.retry_after
            if retry_after is None:
                # No Retry-After: back off exponentially from the poll interval.
                retry_after = min(
                    self.scan_interval.total_seconds() * 2**self._rate_limit_streak,
                    MAX_SCAN_INTERVAL,
                )
            self._rate_limit_streak += 1
            if self.watch is not None:
                self.watch.pause(dt_util.utcnow() + timedelta(seconds=retry_after))
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"retry_after": str(round(retry_after))},
                retry_after=retry_after,
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
