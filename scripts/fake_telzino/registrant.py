"""A model of OpenSIPS uac_registrant, the registrant behind Telzino's agents.

Calibrated on the real module (scripts/opensips/ runs it; tests/opensips/
holds its recorded traces, and tests/test_registrant.py replays them here).
OpenSIPS counts in whole seconds (time(0)); T is the 200 OK, E the granted
expiry, TI the `timer_interval` (default 100 s):

- A timer fires every TI/2 (whole seconds: an odd TI is rounded down) and
  checks the two hash buckets in turn, so each registration is looked at
  every TI, at its bucket's `phase + k x TI`.
- While registered, `registration_t_out` (rto) is T + E - TI. A refresh is
  sent at the first tick whose second is at least rto - TI (OpenSIPS 4.0 and
  later: between 2 TI and TI before the binding expires, so the period flips
  between E - 2 TI and E - TI), or at least rto (3.x, up to 3.6.8: within the
  last TI). REGISTERING, AUTHENTICATING after the registrar's 401, then
  REGISTERED with a new rto take a round trip each.
- The timer drifts by up to half a second, and OpenSIPS compares whole
  seconds: the tick that would act on a threshold sometimes falls in the
  second before it, and the next tick acts. In the recorded traces 24 of 80
  refreshes came a tick late; `late_tick_share` (0 by default: exact ticks)
  moves that share of thresholds to their second tick, chosen by a hash of
  the threshold so that the model stays a function of time.
- No reply: REGISTER_TIMEOUT 30 s after the REGISTER. Any failure sets rto to
  failure + E - TI and is retried at the first tick at or after it: about an
  hour later with the defaults, however soon the registrar is back.
- Enabling sends a REGISTER at once; disabling a registered binding
  unREGISTERs it (UNREGISTERING, AUTHENTICATING_UNREGISTER, then
  NOT_REGISTERED with `enabled` off); disabling a failed one changes only
  `enabled`, and its retry tick sends the unREGISTER.
- A reload keeps a registered registration; any other is recreated from its
  configuration as NOT_REGISTERED and registers at its next tick. A change of
  the SIP settings in Telzino shows NOT_FOUND while its sync service works,
  then NOT_REGISTERED, which registers at its next tick.

The API's integer `expires` is, most likely, `registration_t_out`: in a
failure state the retry threshold, in the future. Telzino documents neither
reading, so `expires_reports` picks it ("binding": T + E).

The model is a pure function of time: `sync(agent, now)` applies every
transition due by `now`, so it runs under frozen time in tests and on the
wall clock in `scripts/develop` alike.
"""

from dataclasses import dataclass, field
import math
import random
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
type Release = Literal["4.x", "3.x"]
# tm's final response timer for a REGISTER without a reply (measured 29.6-30.7 s).
TRANSACTION_TIMEOUT: Final = 30.0
# Refreshes a tick late in the recorded traces (tests/opensips/: 24 of the 80
# refreshes of bindings whose expiry is a whole number of timer intervals).
LATE_TICK_SHARE: Final = 24 / 80
# How long the registrar takes to answer, by behaviour ("silent" never does):
# a round trip (0-3 ms on the lab's loopback); the lab's slow registrar waits
# 8 s before each reply.
REPLY_DELAY: Final[dict[Behaviour, float]] = {
    "answers": 0.002,
    "slow": 8.0,
    "rejects": 0.002,
    "errors": 0.002,
}
FAILED: Final = frozenset(
    {
        "REGISTER_TIMEOUT_STATE",
        "INTERNAL_ERROR_STATE",
        "WRONG_CREDENTIALS_STATE",
        "REGISTRAR_ERROR_STATE",
    }
)
PENDING: Final = frozenset(
    {
        "REGISTERING_STATE",
        "AUTHENTICATING_STATE",
        "UNREGISTERING_STATE",
        "AUTHENTICATING_UNREGISTER_STATE",
    }
)


@dataclass
class Registrant:
    """One agent's registration at the registrar, as OpenSIPS drives it."""

    behaviour: Behaviour = "answers"
    timer_interval: float = 100.0
    # This registration's bucket is checked at phase + k x timer_interval.
    phase: float = 0.0
    # The refresh rule of the OpenSIPS release (see the module docstring).
    release: Release = "4.x"
    # The registrar challenges every REGISTER first (401), as most PBXs do.
    challenge: bool = True
    # How long Telzino's sync service takes to hand a change to OpenSIPS.
    sync_delay: float = 5.0
    # What the API's `expires` shows: OpenSIPS' registration_t_out (the retry
    # threshold in a failure state; the likely reading) or the binding's expiry.
    expires_reports: Literal["registration_t_out", "binding"] = "registration_t_out"
    # The share of thresholds the drifting timer acts on a tick late (see the
    # module docstring; LATE_TICK_SHARE is the recorded one).
    late_tick_share: float = 0.0
    # Scheduled state changes: (time, state), in time order.
    pending: list[tuple[float, str]] = field(default_factory=list)
    # OpenSIPS' registration_t_out (None: "Thu Jan 1 1970") and the binding's
    # expiry at the registrar, as of the last 200 OK.
    registration_t_out: float | None = None
    binding_expires: float | None = None
    synced_at: float = 0.0
    # For the benchmarks and the replay test: REGISTERs sent, and every state
    # entered as (time, state, enabled).
    registers_sent: int = 0
    history: list[tuple[float, str, bool]] = field(default_factory=list)

    @property
    def tick_period(self) -> float:
        """How often this registration's bucket is checked.

        The timer fires every TI/2 in whole seconds and checks the two buckets
        in turn: an odd TI is rounded down (15 s gives 14 s).
        """
        return 2 * (self.timer_interval // 2)

    def next_tick(self, after: float) -> float:
        """Return the first tick of this registration's bucket strictly after `after`."""
        period = self.tick_period
        periods = math.floor((after - self.phase) / period) + 1
        tick = self.phase + periods * period
        # Floating point may land a tick on `after` itself: then the next one.
        return tick if tick > after else tick + period

    def refresh_point(self) -> float | None:
        """Return the first second a refresh may be sent at (None: not registered)."""
        if self.registration_t_out is None:
            return None
        lead = self.timer_interval if self.release == "4.x" else 0.0
        return self.registration_t_out - lead

    def sync(self, agent: FakeAgent, now: float) -> None:
        """Apply every tick and reply due by `now` to the agent."""
        while True:
            tick = self.next_tick(self.synced_at)
            due = self.pending[0][0] if self.pending else math.inf
            if min(tick, due) > now:
                break
            if due <= tick:
                when, state = self.pending.pop(0)
                if state == "REGISTERED_STATE" and not agent.enabled:
                    # Disabled while its REGISTER waited for the reply: the
                    # module unREGISTERs as soon as the 200 OK is in (and
                    # raises no REGISTERED between).
                    self._send_unregister(agent, when)
                else:
                    self._enter(agent, state, when)
                self.synced_at = max(self.synced_at, when)
            else:
                self.synced_at = tick
                self._on_tick(agent, tick)
        self.synced_at = max(self.synced_at, now)

    def _on_tick(self, agent: FakeAgent, now: float) -> None:
        state = agent.state
        if self.pending or state in PENDING or state == "NOT_FOUND":
            return
        if state == "REGISTERED_STATE":
            refresh = self.refresh_point()
            if refresh is not None and self.due(now, refresh):
                self._send_register(agent, now)
        elif state in FAILED:
            threshold = self.registration_t_out
            if threshold is not None and not self.due(now, threshold):
                return  # failures are not retried before the threshold
            if agent.enabled:
                self._send_register(agent, now)
            else:
                self._send_unregister(agent, now)
        elif agent.enabled:  # NOT_REGISTERED_STATE
            self._send_register(agent, now)

    def due(self, tick: float, threshold: float) -> bool:
        """Tell whether a tick at `tick` acts on `threshold`: OpenSIPS' whole seconds."""
        second = math.floor(tick)
        if second < threshold:
            return False
        if self.late_tick_share and second < threshold + 1:
            # A tick in the threshold's own second: drifted into the second
            # before, for this share of thresholds (half a second of drift
            # moves no tick further).
            drifted = random.Random(f"{threshold} {self.phase}").random()  # noqa: S311
            return drifted >= self.late_tick_share
        return True

    def _reply(self, now: float, final: str) -> list[tuple[float, str]]:
        """Return the states a request goes through once sent at `now`, with times."""
        if self.behaviour == "silent":
            return [(now + TRANSACTION_TIMEOUT, "REGISTER_TIMEOUT_STATE")]
        delay = REPLY_DELAY[self.behaviour]
        if self.behaviour == "errors":
            return [(now + delay, "REGISTRAR_ERROR_STATE")]
        steps: list[tuple[float, str]] = []
        if self.challenge:
            now += delay
            steps.append((now, "AUTHENTICATING_STATE"))
        if self.behaviour == "rejects":
            final = "WRONG_CREDENTIALS_STATE"
        steps.append((now + delay, final))
        return steps

    def _send_register(self, agent: FakeAgent, now: float) -> None:
        self.registers_sent += 1
        agent.last_register_sent = math.floor(now)
        self._enter(agent, "REGISTERING_STATE", now)
        self.pending = self._reply(now, "REGISTERED_STATE")

    def _send_unregister(self, agent: FakeAgent, now: float) -> None:
        self._enter(agent, "UNREGISTERING_STATE", now)
        steps = self._reply(now, "NOT_REGISTERED_STATE")
        self.pending = [
            (when, "AUTHENTICATING_UNREGISTER_STATE")
            if state == "AUTHENTICATING_STATE"
            else (when, state)
            for when, state in steps
        ]

    def _enter(self, agent: FakeAgent, state: str, now: float) -> None:
        self.history.append((now, state, agent.enabled))
        agent.state = state
        agent.error_message = None
        self.take_over(agent, now)

    def take_over(self, agent: FakeAgent, now: float) -> None:
        """Go on from the agent's state as of `now` (entered, or set by hand)."""
        state = agent.state
        second = math.floor(now)
        lifetime = agent.registration_timeout
        if state == "REGISTERED_STATE":
            self.registration_t_out = second + lifetime - self.timer_interval
            self.binding_expires = now + lifetime
        elif state in FAILED:
            self.registration_t_out = second + lifetime - self.timer_interval
            self.binding_expires = None
        elif state in ("NOT_FOUND", "NOT_REGISTERED_STATE"):
            self.registration_t_out = self.binding_expires = None
        if state == "NOT_FOUND":
            agent.last_register_sent = None
        agent.expires = self.reported_expiry()

    def reported_expiry(self) -> float | None:
        """Return what the API shows as `expires` (see `expires_reports`)."""
        if self.expires_reports == "registration_t_out":
            return self.registration_t_out
        return self.binding_expires

    # What a user does in Telzino ------------------------------------------------

    def reconfigure(self, agent: FakeAgent, now: float) -> None:
        """Apply new SIP settings: NOT_FOUND until synced, then registered at a tick."""
        self.sync(agent, now)
        agent.enabled = True
        self._enter(agent, "NOT_FOUND", now)
        self.pending = [(now + self.sync_delay, "NOT_REGISTERED_STATE")]

    def reload(self, agent: FakeAgent, now: float, *, enabled: bool = True) -> None:
        """OpenSIPS reloads its registrations (reg_reload), as after a sync.

        A registered one keeps its state and uses the new settings from its
        next refresh; any other, a REGISTER in flight included, is recreated
        from its configuration (`enabled` as configured there: a registration
        disabled at run time only is enabled again) as NOT_REGISTERED, and
        registers at its next tick.
        """
        self.sync(agent, now)
        if agent.state == "REGISTERED_STATE":
            return
        self.pending.clear()
        agent.enabled = enabled
        self._enter(agent, "NOT_REGISTERED_STATE", now)
        agent.last_register_sent = None

    def disable(self, agent: FakeAgent, now: float) -> None:
        """Disable the registration: unREGISTER a binding; a failed one waits.

        A REGISTER still waiting for its reply is answered first; the
        unREGISTER follows the 200 OK (see `sync`).
        """
        self.sync(agent, now)
        agent.enabled = False
        if agent.state == "REGISTERED_STATE":
            self._send_unregister(agent, now)
        else:
            # Shown at once: the state is kept, `enabled` is off.
            agent.expires = self.reported_expiry()

    def enable(self, agent: FakeAgent, now: float) -> None:
        """Enable it again: a disabled NOT_REGISTERED one registers at once.

        A failed one is retried at its threshold; one already enabled is left
        as it is.
        """
        self.sync(agent, now)
        was_enabled, agent.enabled = agent.enabled, True
        if not was_enabled and agent.state == "NOT_REGISTERED_STATE":
            self._send_register(agent, now)

    def set_behaviour(self, agent: FakeAgent, behaviour: Behaviour, now: float) -> None:
        """Change how the registrar answers from now on.

        A REGISTER still unanswered is retransmitted (SIP over UDP: after 0.5,
        1, 2, then every 4 s) until its transaction times out: a registrar
        that answers again in that time answers the next retransmission.
        """
        self.sync(agent, now)
        previous, self.behaviour = self.behaviour, behaviour
        if previous != "silent" or behaviour == "silent" or not self.pending:
            return
        timeout, state = self.pending[-1]
        if state != "REGISTER_TIMEOUT_STATE":
            return
        sent = timeout - TRANSACTION_TIMEOUT
        retransmission = next((at for at in _retransmissions(sent) if at >= now), None)
        if retransmission is None:
            return
        final = (
            "NOT_REGISTERED_STATE"
            if agent.state == "UNREGISTERING_STATE"
            else "REGISTERED_STATE"
        )
        self.pending = self._reply(retransmission, final)


def _retransmissions(sent: float) -> list[float]:
    """Return when an unanswered request over UDP is sent again (T1 0.5 s, T2 4 s)."""
    times: list[float] = []
    interval, at = 0.5, sent
    while True:
        at += interval
        if at >= sent + TRANSACTION_TIMEOUT:
            return times
        times.append(at)
        interval = min(2 * interval, 4.0)
