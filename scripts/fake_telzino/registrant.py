"""A model of OpenSIPS uac_registrant, the registrant behind Telzino's agents.

A periodic timer (`timer_interval`, default 100 s, at a fixed phase) checks
each registration. A registered binding is refreshed at the first tick after
its refresh point (`timer_interval` before it expires): REGISTERING, then
AUTHENTICATING after the registrar's 401 challenge, then REGISTERED with a new
expiry, or REGISTER_TIMEOUT (no reply within the SIP transaction timeout),
WRONG_CREDENTIALS or REGISTRAR_ERROR; failed registrations are retried at
later ticks. A change of the SIP settings in Telzino shows NOT_FOUND while the
sync service works; disabling unREGISTERs (UNREGISTERING or, with auth,
AUTHENTICATING_UNREGISTER) and ends NOT_REGISTERED with `enabled` off.

The model is a pure function of time: `sync(agent, now)` applies every
transition due by `now`, so it runs under frozen time in tests and on the
wall clock in `scripts/develop` alike.
"""

from dataclasses import dataclass, field
import math
from typing import Final, Literal

from .agent import FakeAgent

type Behaviour = Literal["answers", "slow", "silent", "rejects", "errors"]
BEHAVIOURS: Final[tuple[Behaviour, ...]] = (
    "answers",
    "slow",
    "silent",
    "rejects",
    "errors",
)
# A SIP transaction without a reply gives up after 64 x T1 (T1 = 500 ms).
TRANSACTION_TIMEOUT: Final = 32.0
# How long the registrar takes to answer, by behaviour ("silent" never does).
REPLY_DELAY: Final[dict[Behaviour, float]] = {
    "answers": 0.05,
    "slow": 8.0,
    "rejects": 0.05,
    "errors": 0.05,
}
FAILED: Final = frozenset(
    {
        "REGISTER_TIMEOUT_STATE",
        "INTERNAL_ERROR_STATE",
        "WRONG_CREDENTIALS_STATE",
        "REGISTRAR_ERROR_STATE",
    }
)


@dataclass
class Registrant:
    """One agent's registration at the registrar, as OpenSIPS drives it."""

    behaviour: Behaviour = "answers"
    timer_interval: float = 100.0
    # Ticks happen at phase + k x timer_interval.
    phase: float = 0.0
    # The registrar challenges the first REGISTER (401), as most PBXs do.
    challenge: bool = True
    # How long Telzino's sync service takes to hand a change to OpenSIPS.
    sync_delay: float = 5.0
    # What the API's `expires` reports: the binding's expiry, or the refresh
    # point OpenSIPS computes from it (Telzino does not document which).
    expires_reports: Literal["binding", "refresh_point"] = "binding"
    # Scheduled state changes: (time, state), in time order.
    pending: list[tuple[float, str]] = field(default_factory=list)
    binding_expires: float | None = None
    synced_at: float = 0.0
    # For the detection benchmark: REGISTERs sent, and every state entered as
    # (time, state, enabled).
    registers_sent: int = 0
    history: list[tuple[float, str, bool]] = field(default_factory=list)

    def next_tick(self, after: float) -> float:
        """Return the first timer tick strictly after `after`."""
        periods = math.floor((after - self.phase) / self.timer_interval) + 1
        return self.phase + periods * self.timer_interval

    def refresh_point(self) -> float | None:
        """Return when the binding is due for a refresh (None: not registered)."""
        if self.binding_expires is None:
            return None
        return self.binding_expires - self.timer_interval

    def sync(self, agent: FakeAgent, now: float) -> None:
        """Apply every tick and reply due by `now` to the agent."""
        while True:
            tick = self.next_tick(self.synced_at)
            due = self.pending[0][0] if self.pending else math.inf
            if min(tick, due) > now:
                break
            if due <= tick:
                when, state = self.pending.pop(0)
                self._enter(agent, state, when)
                self.synced_at = max(self.synced_at, when)
            else:
                self.synced_at = tick
                self._on_tick(agent, tick)
        self.synced_at = max(self.synced_at, now)

    def _on_tick(self, agent: FakeAgent, now: float) -> None:
        if self.pending or not agent.enabled:
            return
        refresh = self.refresh_point()
        registered = agent.state == "REGISTERED_STATE"
        if (registered and refresh is not None and now >= refresh) or (
            agent.state in FAILED or agent.state == "NOT_REGISTERED_STATE"
        ):
            self._send_register(agent, now)

    def _send_register(self, agent: FakeAgent, now: float) -> None:
        self.registers_sent += 1
        agent.last_register_sent = now
        self._enter(agent, "REGISTERING_STATE", now)
        if self.behaviour == "silent":
            self.pending = [(now + TRANSACTION_TIMEOUT, "REGISTER_TIMEOUT_STATE")]
            return
        delay = REPLY_DELAY[self.behaviour]
        if self.behaviour == "errors":
            self.pending = [(now + delay, "REGISTRAR_ERROR_STATE")]
            return
        steps: list[tuple[float, str]] = []
        if self.challenge:
            now += delay
            steps.append((now, "AUTHENTICATING_STATE"))
        final = (
            "WRONG_CREDENTIALS_STATE"
            if self.behaviour == "rejects"
            else "REGISTERED_STATE"
        )
        steps.append((now + delay, final))
        self.pending = steps

    def _enter(self, agent: FakeAgent, state: str, now: float) -> None:
        self.history.append((now, state, agent.enabled))
        agent.state = state
        agent.error_message = None
        if state == "REGISTERED_STATE":
            self.binding_expires = now + agent.registration_timeout
        elif state in FAILED or state in ("NOT_FOUND", "NOT_REGISTERED_STATE"):
            self.binding_expires = None
        if state == "NOT_FOUND":
            agent.last_register_sent = None
        agent.expires = self.reported_expiry()

    def reported_expiry(self) -> float | None:
        """Return what the API shows as `expires` (see `expires_reports`)."""
        if self.expires_reports == "refresh_point":
            return self.refresh_point()
        return self.binding_expires

    # What a user does in Telzino ------------------------------------------------

    def reconfigure(self, agent: FakeAgent, now: float) -> None:
        """Apply new SIP settings: NOT_FOUND until synced, then registered at a tick."""
        self.sync(agent, now)
        agent.enabled = True
        self._enter(agent, "NOT_FOUND", now)
        self.pending = [(now + self.sync_delay, "NOT_REGISTERED_STATE")]

    def disable(self, agent: FakeAgent, now: float) -> None:
        """Disable the registration: unREGISTER, then NOT_REGISTERED, enabled off."""
        self.sync(agent, now)
        agent.enabled = False
        delay = REPLY_DELAY.get(self.behaviour, TRANSACTION_TIMEOUT)
        unregistering = (
            "AUTHENTICATING_UNREGISTER_STATE"
            if self.challenge
            else "UNREGISTERING_STATE"
        )
        self._enter(agent, unregistering, now)
        self.pending = [(now + delay, "NOT_REGISTERED_STATE")]

    def enable(self, agent: FakeAgent, now: float) -> None:
        """Enable it again: synced like a change of settings."""
        self.reconfigure(agent, now)

    def set_behaviour(self, agent: FakeAgent, behaviour: Behaviour, now: float) -> None:
        """Change how the registrar answers from now on (the next REGISTER)."""
        self.sync(agent, now)
        self.behaviour = behaviour
