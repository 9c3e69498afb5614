"""Whether an agent can receive calls: registered, or a binding that still holds.

OpenSIPS refreshes a binding by registering again, and registers it again
after a reload that met a pending refresh; until the old binding expires the
agent still receives calls. The rules, measured on the real registrant, are
in docs/how-it-works.md ("Can receive calls").
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from .api import RegistrationState, RegistrationStatus
from .const import REFRESH_GRACE, REFRESH_REPLY_GRACE
from .watch import DEFAULT_TIMER, RefreshWatch

REFRESH_STATES: Final = frozenset(
    {RegistrationState.REGISTERING, RegistrationState.AUTHENTICATING}
)


@dataclass(slots=True)
class _Binding:
    """A binding seen registered, which may take calls while not registered."""

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


class Bindings:
    """The bindings of an account's agents that were seen registered."""

    def __init__(self, watch: RefreshWatch | None) -> None:
        """Use the refresh watch's timer and refresh predictions, if there is one."""
        self._watch = watch
        self._bindings: dict[str, _Binding] = {}

    def retain(self, agent_ids: Iterable[str]) -> None:
        """Forget the bindings of agents no longer watched."""
        keep = set(agent_ids)
        for agent_id in self._bindings.keys() - keep:
            del self._bindings[agent_id]

    def holds_until(self, agent_id: str) -> datetime | None:
        """Until when the agent's binding takes calls while not registered."""
        binding = self._bindings.get(agent_id)
        return None if binding is None else binding.holds_until

    def can_receive_calls(
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
            self._bindings[agent_id] = _Binding(now, api_sent)
            return True
        binding = self._bindings.get(agent_id)
        if binding is not None:
            binding.holds_until = self._holds_until(
                agent_id, binding, status, now, api_sent
            )
            if binding.holds_until is not None and now < binding.holds_until:
                return True
            del self._bindings[agent_id]
        return False

    def _holds_until(
        self,
        agent_id: str,
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
        watch = self._watch
        refresh_due = None if watch is None else watch.refresh_due(agent_id)
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
            tick = None if watch is None else watch.next_tick(agent_id, now)
            binding.reregister_by = (
                tick or now + timedelta(seconds=DEFAULT_TIMER)
            ) + REFRESH_REPLY_GRACE
        if status.expires is None:
            return binding.reregister_by
        return min(binding.reregister_by, status.expires)
