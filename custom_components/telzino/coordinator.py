"""Polls the registration status of the watched Telzino agents."""

from datetime import datetime, timedelta
from typing import Any, Final, NoReturn, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HassJob, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    Agent,
    RegistrationStatus,
    TelzinoAuthenticationError,
    TelzinoClient,
    TelzinoError,
    TelzinoForbiddenError,
    TelzinoInvalidResponseError,
    TelzinoNotFoundError,
    TelzinoRateLimitedError,
)
from .bindings import Bindings
from .const import (
    CONF_AGENTS,
    CONF_ALL_AGENTS,
    CONF_SCAN_INTERVAL,
    CONF_WATCH_REFRESH,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    LOGGER,
)
from .data import AgentData, StatusError
from .history import TelzinoHistory
from .issues import AccountIssues
from .scheduler import Plan, Scheduler
from .store import AccountStore, agents_to_store
from .watch import RefreshWatch

type TelzinoConfigEntry = ConfigEntry[TelzinoCoordinator]

# A step sends what the scheduler plans, then what it plans with the answers
# (after a probe, or the agent list that names the agents), at most this often.
MAX_ROUNDS: Final = 4


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
        # Every agent of the account by ID, from the last agent list.
        self.account_agents: dict[str, Agent] = {}
        # Extra single-agent polls around predicted refreshes (an option).
        self.watch: RefreshWatch | None = (
            RefreshWatch() if entry.options.get(CONF_WATCH_REFRESH, True) else None
        )
        self.bindings = Bindings(self.watch)
        self.scheduler = Scheduler(self.scan_interval, client.budget)
        self._synced_watched: list[str] | None = None
        self._next_step = dt_util.utcnow() + self.scan_interval
        self._scheduled = False
        self._step_job = HassJob(
            self._async_scheduled_step,
            f"{entry.title} step",
            cancel_on_shutdown=True,
        )
        self.issues = AccountIssues(hass, entry)
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
        """Run one step: send what the scheduler plans, then merge the answers."""
        now = dt_util.utcnow()
        scheduler, budget = self.scheduler, self.client.budget
        if not self._scheduled:
            # Asked for (update_entity, a reload): every agent now, as far as
            # the budget goes, as polling integrations do.
            scheduler.read_all()
        self._scheduled = False
        results: dict[str, RegistrationStatus | TelzinoError] = {}
        failed_looks: set[str] = set()
        outage: TelzinoError | None = None
        try:
            # The scheduler plans nothing once every request it planned was
            # answered or held back: the bound is a safeguard only.
            for _ in range(MAX_ROUNDS):  # pragma: no branch
                self._sync_watched()
                due = self.watch.due(now) if self.watch is not None else []
                if not (plan := scheduler.plan(now, due)):
                    break
                sent_before = budget.sent
                pages = await self._async_read_agent_list() if plan.agent_list else None
                answers = (
                    await self.client.get_registration_statuses(plan.agents)
                    if plan.agents
                    else {}
                )
                outage = self._outage(plan, answers)
                scheduler.done(
                    now,
                    plan,
                    {
                        agent_id: not isinstance(answer, TelzinoRateLimitedError)
                        for agent_id, answer in answers.items()
                    },
                    sent=budget.sent - sent_before,
                    list_pages=pages,
                    outage=outage is not None,
                )
                if self.watch is not None:
                    failed_looks |= self.watch.looked(now, plan.looks, answers)
                results |= answers
            if outage is not None:
                # Nothing answered, the probes included: the API is out.
                self._raise_update_failed(outage)
        except Exception:
            self._plan_next_step(now)
            raise
        for failed in failed_looks:
            # A look only looks: the reads report what the API does.
            results.pop(failed, None)
        data = self._merge(now, results)
        # After the readings, which plan the agents' next looks.
        self._plan_next_step(now)
        self._update_account_issues()
        return data

    def _plan_next_step(self, now: datetime) -> None:
        next_look = self.watch.next_look() if self.watch is not None else None
        self._next_step = self.scheduler.next_step(now, next_look)

    def _outage(
        self, plan: Plan, answers: dict[str, RegistrationStatus | TelzinoError]
    ) -> TelzinoError | None:
        """Return the error of a step in which the API answered nothing (None: it did)."""
        errors = []
        for agent_id, answer in answers.items():
            if isinstance(answer, TelzinoAuthenticationError):
                self._raise_update_failed(answer)
            if isinstance(answer, TelzinoError) and agent_id not in plan.looks:
                errors.append(answer)
        reads = [a for a in answers if a not in plan.looks]
        if (
            reads
            and len(errors) == len(reads)
            and not any(
                isinstance(e, (TelzinoRateLimitedError, TelzinoNotFoundError))
                for e in errors
            )
        ):
            return errors[0]
        return None

    def _sync_watched(self) -> None:
        """Follow the watched agents (the options, or the agent list)."""
        if self._synced_watched is self.watched:
            return
        self._synced_watched = self.watched
        self.scheduler.sync(self.watched)
        self.bindings.retain(self.watched)
        if self.watch is not None:
            self.watch.retain(self.watched)

    def _merge(
        self, now: datetime, results: dict[str, RegistrationStatus | TelzinoError]
    ) -> dict[str, AgentData]:
        """Return every watched agent's data after this step's readings."""
        previous = self.data or {}
        data = {
            agent_id: previous.get(agent_id)
            or AgentData(name=self._agent_name(agent_id), status=None)
            for agent_id in self.watched
        }
        # Repair issues and logs follow changes: most steps change nothing.
        changed: dict[str, AgentData] = {}
        offset = self.client.server_clock.offset
        for agent_id, result in results.items():
            if isinstance(result, TelzinoRateLimitedError) or agent_id not in data:
                continue
            before = data[agent_id]
            agent = self.bindings.agent_data(
                agent_id,
                result,
                now,
                name=self._agent_name(agent_id),
                previous=before,
                offset=offset,
            )
            if self.watch is not None:
                self.watch.observe(agent_id, agent.status, now)
            if agent.status is not None:
                stays_until = self.bindings.stays_until(
                    agent_id, agent.status, now, calls=agent.can_receive_calls
                )
                self.scheduler.read(agent_id, now, stays_until)
                if self.watch is not None and stays_until and agent.held:
                    self.watch.look_by(agent_id, stays_until)  # when the hold ends
            else:
                self.scheduler.forget(agent_id)
            if agent is not before:
                data[agent_id] = changed[agent_id] = agent
        for agent_id, read_at in self.scheduler.expired(now).items():
            shown = data[agent_id]
            data[agent_id] = changed[agent_id] = AgentData(
                name=shown.name,
                status=None,
                error=StatusError(
                    TelzinoRateLimitedError,
                    f"Not read since {dt_util.as_local(read_at):%H:%M:%S}: the "
                    "API's request budget allows no read sooner",
                ),
            )
        self.issues.update_agents(changed, self.all_agents)
        if self.all_agents and any(
            a.error is not None and issubclass(a.error.kind, TelzinoNotFoundError)
            for a in changed.values()
        ):
            # Deleted from the account: the next agent list removes its device.
            self.scheduler.list_now()
        return data

    async def _async_scheduled_step(self, _now: datetime | None = None) -> None:
        """Run the step the scheduler planned (only what is due)."""
        self._scheduled = True
        await self._handle_refresh_interval()

    @callback
    @override
    def _schedule_refresh(self) -> None:
        """Run the next step when it is due, to the second.

        The base class rounds to whole seconds and a fixed interval; the
        scheduler's steps and the refresh watch's looks need their moment.
        """
        if self.config_entry.pref_disable_polling:
            return
        self._async_unsub_refresh()
        self._unsub_refresh = async_track_point_in_utc_time(
            self.hass, self._step_job, self._next_step
        )

    def _update_account_issues(self) -> None:
        """Follow the budget and the server's clock; store a budget that changed."""
        figures = self.scheduler.budget_figures()
        if figures != self._budget_figures:
            self._budget_figures = figures
            async_dispatcher_send(self.hass, self.budget_signal)
        self.issues.update_budget(
            self.scheduler.agents,
            self.scan_interval,
            self.scheduler.effective_interval,
            figures[1] or 0,
        )
        self.issues.update_clock(self.client.server_clock.offset)
        if (stored := self._budget_to_store()) != self._stored_budget:
            self._stored_budget = stored
            self.store.async_save_later(self._data_to_store)

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

    def _agent_name(self, agent_id: str) -> str:
        agent = self.account_agents.get(agent_id)
        return agent.name if agent else agent_id

    async def _async_read_agent_list(self) -> int | None:
        """Read the agent list (names, and with all_agents what to watch).

        Return the pages it took; None when it failed and the agents known
        stand in for it.
        """
        try:
            agents = await self.client.get_agents()
        except TelzinoForbiddenError as err:
            if self.all_agents:
                self._raise_update_failed(err)
            # Credentials that may not list agents still poll their statuses;
            # devices are then named by agent ID.
            agents = []
        except TelzinoAuthenticationError as err:
            self._raise_update_failed(err)
        except TelzinoError as err:
            if not self.account_agents and not isinstance(err, TelzinoRateLimitedError):
                self._raise_update_failed(err)
            LOGGER.debug("Keeping the known agents: %s", err)
            return None
        self.account_agents = {agent.id: agent for agent in agents}
        if self.all_agents:
            self.watched = list(self.account_agents)
        self.store.async_save_later(self._data_to_store)
        self._sync_devices()
        return self.client.agent_list_pages

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
