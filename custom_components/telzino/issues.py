"""What an account tells its user of problems: repair issues, and the log.

Repair issues are raised and cleared as their cause comes and goes; an agent
whose status cannot be read is logged once, and once again when it can.
"""

from collections.abc import Mapping
from datetime import timedelta
from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .api import RegistrationState, TelzinoNotFoundError
from .const import (
    DASHBOARD_URL,
    DOMAIN,
    ISSUE_AGENT_NOT_FOUND,
    ISSUE_CLOCK_OFFSET,
    ISSUE_REQUEST_BUDGET,
    ISSUE_WRONG_CREDENTIALS,
    LOGGER,
)
from .data import AgentData

# A repair issue when the budget stretches the interval past this factor ...
BUDGET_ISSUE_FACTOR: Final = 2
# ... and when this host's clock is this far from Telzino's.
CLOCK_ISSUE_OFFSET: Final = timedelta(minutes=5)


def issue_id(kind: str, agent_id: str) -> str:
    """Return the repair issue ID of one agent (agent IDs are unique across entries)."""
    return f"{kind}_{agent_id}"


class AccountIssues:
    """Raises and clears one entry's repair issues as what it reads changes."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Start with no issue raised."""
        self._hass = hass
        self._entry = entry
        # Each raised issue's placeholders (None: not raised).
        self._raised: dict[str, dict[str, str] | None] = {}
        # The agents logged as unavailable.
        self._unavailable: set[str] = set()

    def update_agents(self, changed: Mapping[str, AgentData], all_agents: bool) -> None:
        """Follow the agents that changed: unreadable, wrong credentials, deleted."""
        for agent_id, agent in changed.items():
            self._log_availability(agent_id, agent)
            self._set_agent_issue(
                ISSUE_WRONG_CREDENTIALS,
                agent_id,
                active=agent.status is not None
                and agent.status.state is RegistrationState.WRONG_CREDENTIALS,
                placeholders={"agent": agent.name, "dashboard_url": DASHBOARD_URL},
            )
            # With all agents watched, the next agent list drops its device.
            self._set_agent_issue(
                ISSUE_AGENT_NOT_FOUND,
                agent_id,
                active=not all_agents
                and agent.error is not None
                and issubclass(agent.error.kind, TelzinoNotFoundError),
                placeholders={"agent": agent.name, "agent_id": agent_id},
                fixable=True,
            )

    def _log_availability(self, agent_id: str, agent: AgentData) -> None:
        """Log once when an agent's status cannot be read, and once when it can again."""
        if agent.error is not None and agent_id not in self._unavailable:
            self._unavailable.add(agent_id)
            LOGGER.warning(
                "Status of agent %s (%s) is unavailable: %s",
                agent.name,
                agent_id,
                agent.error,
            )
        elif agent.error is None and agent_id in self._unavailable:
            self._unavailable.discard(agent_id)
            LOGGER.info("Status of agent %s (%s) is back", agent.name, agent_id)

    def update_budget(
        self, agents: int, configured: timedelta, effective: timedelta, granted: int
    ) -> None:
        """Raise the budget issue while it stretches the interval past twice."""
        seconds = configured.total_seconds()
        self._set_account_issue(
            ISSUE_REQUEST_BUDGET,
            active=effective > BUDGET_ISSUE_FACTOR * configured,
            placeholders={
                "account": self._entry.title,
                "agents": str(agents),
                "configured": str(round(seconds)),
                "effective": str(round(effective.total_seconds())),
                "needed": str(round(agents * 3600 / seconds)),
                "granted": str(granted),
                "configured_twice": str(round(BUDGET_ISSUE_FACTOR * seconds)),
            },
        )

    def update_clock(self, offset: float) -> None:
        """Raise the clock issue while this host's clock is far from Telzino's.

        The API's times are moved onto this clock, so the signal holds; but
        they then differ from what Telzino shows, and every other time Home
        Assistant keeps (logs, history, automations) is off by as much.
        """
        self._set_account_issue(
            ISSUE_CLOCK_OFFSET,
            active=abs(offset) > CLOCK_ISSUE_OFFSET.total_seconds(),
            placeholders={
                "account": self._entry.title,
                "minutes": str(round(abs(offset) / 60)),
            },
        )

    def _set_account_issue(
        self, kind: str, *, active: bool, placeholders: dict[str, str]
    ) -> None:
        """Raise the account's issue of this kind, or clear it, when that changes.

        A raised issue follows its figures.
        """
        raised = placeholders if active else None
        if self._raised.get(kind) == raised:
            return
        self._raised[kind] = raised
        issue = f"{kind}_{self._entry.entry_id}"
        if not active:
            ir.async_delete_issue(self._hass, DOMAIN, issue)
            return
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=kind,
            translation_placeholders=placeholders,
            data={"entry_id": self._entry.entry_id},
        )

    def _set_agent_issue(
        self,
        kind: str,
        agent_id: str,
        *,
        active: bool,
        placeholders: dict[str, str],
        fixable: bool = False,
    ) -> None:
        if not active:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id(kind, agent_id))
            return
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue_id(kind, agent_id),
            is_fixable=fixable,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=kind,
            translation_placeholders=placeholders,
            learn_more_url=None if fixable else DASHBOARD_URL,
            data={"entry_id": self._entry.entry_id, "agent_id": agent_id},
        )
