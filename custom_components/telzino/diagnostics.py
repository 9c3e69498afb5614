"""Diagnostics of a Telzino config entry, with secrets redacted."""

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .const import CONF_ACCESS_TOKEN, CONF_CLIENT_ID, CONF_CLIENT_SECRET
from .coordinator import TelzinoConfigEntry
from .scheduler import Scheduler

TO_REDACT = {CONF_ACCESS_TOKEN, CONF_CLIENT_ID, CONF_CLIENT_SECRET}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: TelzinoConfigEntry
) -> dict[str, Any]:
    """Return what a bug report needs: settings, last poll, last errors."""
    coordinator = entry.runtime_data
    now = dt_util.utcnow().timestamp()
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "last_exception": str(coordinator.last_exception)
            if coordinator.last_exception
            else None,
            "update_interval": coordinator.update_interval.total_seconds()
            if coordinator.update_interval
            else None,
            "all_agents": coordinator.all_agents,
            "account_agent_count": len(coordinator.account_agents),
            # How far Telzino's clock is ahead of this host's (from its answers'
            # Date headers; None until one came).
            "server_clock_offset_s": coordinator.client.server_clock.offset
            if coordinator.client.server_clock.known
            else None,
        },
        "request_budget": _request_budget(coordinator.scheduler),
        "refresh_watch": None
        if (watch := coordinator.watch) is None
        else {
            "looks": watch.polls,
            # Where refreshes come, in timer intervals from `expires`.
            "refresh_ticks": list(watch.window),
        },
        "agents": {
            agent_id: {
                "name": agent.name,
                "status": asdict(agent.status) if agent.status else None,
                "can_receive_calls": agent.can_receive_calls,
                "error": str(agent.error) if agent.error else None,
                "history": history.summary(now)
                if (history := coordinator.history.agents.get(agent_id))
                else None,
            }
            for agent_id, agent in coordinator.data.items()
        },
    }


def _request_budget(scheduler: Scheduler) -> dict[str, Any]:
    """Return what was learned of the API's request budget, and how it is spent."""
    budget = scheduler.budget
    _, per_hour = scheduler.budget_figures()
    return {
        "source": budget.source,
        "requests_per_hour": per_hour,
        "window_s": budget.window,
        "remaining": budget.remaining,
        # What other clients of the account use of an announced limit.
        "other_clients_per_hour": round(budget.others_rate * 3600),
        "blocked_for_s": round(budget.blocked_for(), 1),
        "requests_sent": budget.sent,
        "requests_rate_limited": budget.rate_limited,
        "configured_interval_s": scheduler.interval.total_seconds(),
        "effective_interval_s": round(scheduler.effective_interval.total_seconds(), 1),
        "read_lag_s": round(scheduler.read_lag.total_seconds(), 1),
        "refresh_looks_allowed": scheduler.looks_allowed,
    }
