"""What a reading says of an agent: whether it can receive calls, and until when.

Registered, or a binding that still holds: OpenSIPS refreshes a binding by
registering again, and registers it again after a reload that met a pending
refresh; until the old binding expires the agent still receives calls. The
rules, measured on the real registrant, are in docs/how-it-works.md ("Can
receive calls").
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from .api import RegistrationState, RegistrationStatus, TelzinoError
from .const import REFRESH_GRACE, REFRESH_REPLY_GRACE
from .data import AgentData, StatusError
from .scheduler import READ_SLACK, STEP
from .watch import DEFAULT_TIMER, REPLY_MARGIN, TICK_SLACK, RefreshWatch, next_attempt

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
    # Its `expires` then: it holds at the registrar a timer interval later at
    # the latest (`expires` may be OpenSIPS' registration_t_out).
    expires: datetime | None
    # Until when a refresh of it seen under way counts as one.
    refresh_until: datetime | None = None
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

    def agent_data(
        self,
        agent_id: str,
        result: RegistrationStatus | TelzinoError,
        now: datetime,
        *,
        name: str,
        previous: AgentData | None,
        offset: float,
    ) -> AgentData:
        """Return what a reading says of an agent; `previous` if nothing changed.

        So a changed agent is one whose data is not the previous object. Its
        times are moved onto Home Assistant's clock: `offset` is how far the
        API's clock is ahead.
        """
        if isinstance(result, TelzinoError):
            agent = AgentData(
                name=name, status=None, error=StatusError.from_exception(result)
            )
        else:
            status = result.shifted(-offset)
            can_receive_calls = self.can_receive_calls(
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

    def stays_until(
        self, agent_id: str, status: RegistrationStatus, now: datetime, *, calls: bool
    ) -> datetime | None:
        """Until when a reading provably stays what OpenSIPS has; None: not at all.

        OpenSIPS changes a registered binding only at its refresh (or when the
        registration is disabled or reloaded); a binding that still holds
        without being registered (`calls`: it can receive calls) keeps taking
        calls until its deadline; a failed registration changes at its next
        attempt.
        """
        look_margin = REPLY_MARGIN + TICK_SLACK + STEP + READ_SLACK
        if status.is_registered:
            refresh = None if self._watch is None else self._watch.refresh_due(agent_id)
            return None if refresh is None else refresh + look_margin
        if calls:
            binding = self._bindings.get(agent_id)
            return None if binding is None else binding.holds_until
        attempt = self.next_attempt(agent_id, status, now)
        return None if attempt is None else attempt + look_margin

    def next_attempt(
        self, agent_id: str, status: RegistrationStatus, now: datetime
    ) -> datetime | None:
        """When OpenSIPS will next try to register a failed agent, if known.

        From the refresh watch, which learns each agent's timer; without it,
        with OpenSIPS' default timer.
        """
        if self._watch is not None:
            return self._watch.next_attempt(agent_id)
        return next_attempt(status, timedelta(seconds=DEFAULT_TIMER), now)

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
            self._bindings[agent_id] = _Binding(now, api_sent, status.expires)
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
        - NOT_REGISTERED, enabled, while a refresh may be under way:
          OpenSIPS' reload keeps a registered binding but resets one whose
          REGISTER awaits its reply, and registers it again at its next timer
          tick, while the old binding still holds. Until that tick and the
          reply's grace, set at the
          first such reading (later ones do not move it); never past the
          binding's expiry or the refresh's grace, whichever is later, nor
          past an `expires` the reading itself shows.
        """
        if status.state in REFRESH_STATES:
            sent = status.last_register_sent
            if (
                sent is not None
                and api_sent is not None
                and (binding.sent is None or api_sent > binding.sent)
            ):
                binding.refresh_until = sent + REFRESH_REPLY_GRACE
            else:
                binding.refresh_until = binding.seen + REFRESH_GRACE
            return binding.refresh_until
        if (
            status.state is not RegistrationState.NOT_REGISTERED
            or status.enabled is False
            # A reload meets a refresh only while one may be under way: seen,
            # or due (or the API does not show when refreshes go). Otherwise
            # (new SIP settings, say) NOT_REGISTERED is no binding's refresh.
            or not (
                binding.refresh_until is not None
                or (
                    self._watch is not None
                    and self._watch.refresh_may_be_under_way(agent_id, now)
                )
            )
        ):
            return None
        if binding.reregister_by is None:
            tick = None if self._watch is None else self._watch.next_tick(agent_id, now)
            binding.reregister_by = (
                tick or now + self._timer(agent_id)
            ) + REFRESH_REPLY_GRACE
        # The binding's own deadlines; an `expires` this reading shows.
        valid_until = binding.expires and binding.expires + self._timer(agent_id)
        holds = [t for t in (valid_until, binding.refresh_until) if t]
        until = min(binding.reregister_by, max(holds, default=binding.reregister_by))
        return until if status.expires is None else min(until, status.expires)

    def _timer(self, agent_id: str) -> timedelta:
        """Return the agent's timer interval: learned by the refresh watch, else the default."""
        if self._watch is None:
            return timedelta(seconds=DEFAULT_TIMER)
        return self._watch.timer(agent_id)
