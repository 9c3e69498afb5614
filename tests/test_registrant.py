"""The fake API's model of OpenSIPS uac_registrant, against the real module.

The replay tests drive the model through the scenarios recorded from the real
registrant (tests/opensips/, made by scripts/opensips/) and fail on any
difference: the same states in the same order, each at the recorded time give
or take a second (where the module's drifting timer decides, the recording
does), and the same `registration_t_out`. The other tests pin down the rules one by one.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
import itertools
import math
from typing import Any

import aiohttp
import pytest

from scripts.fake_telzino import (
    LATE_TICK_SHARE,
    TRANSACTION_TIMEOUT,
    FakeAgent,
    FakeTelzino,
    Registrant,
)
from scripts.fake_telzino.registrant import REPLY_DELAY, Behaviour
from tests.common import FakeClock
from tests.traces import TRACES, Trace, load, real_events

pytestmark = pytest.mark.ha_free

TIMER = 100.0
# States the module raises no event for (the model records every state).
SILENT_STATES = {"NOT_REGISTERED_STATE", "NOT_FOUND"}
# How the lab's registrar answers each user, unless the scenario switches it.
USER_BEHAVIOUR: dict[str, Behaviour] = {
    "wrongpw": "rejects",
    "err403": "errors",
    "err503": "errors",
    "silent": "silent",
    "slow": "slow",
}
REGISTRAR_MODES: dict[str, Behaviour] = {
    "normal": "answers",
    "silent": "silent",
    "503": "errors",
    "403": "errors",
    "slow": "slow",
}
# Which registrar each lab instance registers with (registrant c: the capped one).
REGISTRAR_OF = {
    "a": "registrar",
    "b": "registrar",
    "c": "registrar2",
    "d": "registrar",
    "e": "registrar",
}
# The users each of the registrar's run-time modes applies to.
MODE_USERS = {"pend": {"pendrel", "pendis"}}


def cases() -> Iterator[Any]:
    """One case per registration of every recorded trace."""
    for path in TRACES:
        trace = load(path)
        for reg in trace.header["registrations"]:
            if any(line.get("state") for line in trace.of(reg)):
                yield pytest.param(trace, reg, id=f"{trace.name}:{reg}")


# The module's whole-second timer drifts around its mean rate, by up to a
# second (the capped trace): a model tick this close to a recorded REGISTER is
# that REGISTER's tick, and a tick this close to a threshold may act on it or
# not, as the recording shows.
MARGINAL = 1.5


FINAL_STATES = {
    "REGISTERED",
    "REGISTER_TIMEOUT",
    "WRONG_CREDENTIALS",
    "REGISTRAR_ERROR",
}
SENDS = {"REGISTERING", "UNREGISTERING"}
PENDING_EVENTS = {"REGISTERING", "AUTHENTICATING"}


class FollowingRegistrant(Registrant):
    """The model, on the real registrant's ticks.

    The module's timer drifts: a REGISTER the model sends within MARGINAL of a
    recorded one is sent at the recorded time, and a tick that close to a
    threshold acts on it if the recording shows it did. Everything else (the
    ticks' schedule, thresholds, replies, timeouts, retries) follows the
    model's rules.
    """

    real_sends: list[float]
    # The recorded timer's rate: whole-second timers drift (13.87 s for a
    # nominal 14 s in the capped trace).
    real_period: float | None = None

    @property
    def tick_period(self) -> float:
        """The recorded timer's period, where there is one."""
        return self.real_period or super().tick_period

    def _real_send_near(self, when: float) -> float | None:
        return next(
            (sent for sent in self.real_sends if abs(sent - when) < MARGINAL), None
        )

    def next_tick(self, after: float) -> float:
        """Return the model's next tick, or the recorded send it stands for.

        So that a command sent a moment after a recorded REGISTER (a reload or
        a disable meeting it pending) finds it sent, as the module did.
        """
        tick = super().next_tick(after)
        real = self._real_send_near(tick)
        if real is None:
            return tick
        # A recorded send already behind `after` was this tick.
        return real if real > after else super().next_tick(tick)

    def due(self, tick: float, threshold: float) -> bool:
        """Decide by the rule, or by the recording when the tick is that close."""
        if abs(tick - threshold) < MARGINAL:
            return self._real_send_near(tick) is not None
        return super().due(tick, threshold)

    def _send_register(self, agent: FakeAgent, now: float) -> None:
        super()._send_register(agent, self._real_send_near(now) or now)

    def _send_unregister(self, agent: FakeAgent, now: float) -> None:
        super()._send_unregister(agent, self._real_send_near(now) or now)


@dataclass
class Replay:
    """The model, driven by what the scenario did to one registration.

    It takes over at the registration's first outcome (OpenSIPS' start-up,
    which registers everything at once, is not modelled) and runs on Unix
    time, as OpenSIPS does; its timer's phase is the recorded ticks'.
    """

    trace: Trace
    reg: str
    agent: FakeAgent = field(init=False)
    model: Registrant = field(init=False)

    def __post_init__(self) -> None:
        """Start at the first outcome, in the recorded state."""
        instance, user = self.reg.split("/")
        settings = self.trace.header["registrations"][self.reg]
        timer = settings["timer_interval"]
        granted = max(
            (
                line["reg_list"]["expires"]
                for line in self.trace.of(self.reg)
                if "reg_list" in line
                and line["reg_list"]["state"] == "REGISTERED_STATE"
            ),
            default=settings["expiry"],
        )
        events = real_events(self.trace, self.reg)
        t0 = self.trace.t0
        outcome = next(
            i for i, (_, state) in enumerate(events) if state in FINAL_STATES
        )
        self.start = events[outcome][0]
        sent = max(t for t, state in events[:outcome] if state == "REGISTERING")
        enables = [
            line["t"]
            for line in self.trace.lines
            if line.get("action", "").startswith(f"enable {self.reg}")
        ]
        # The timer's ticks: the REGISTERs and unREGISTERs it sent, not those
        # sent at once (an enable) or on a reply (the unREGISTER that follows
        # the 200 OK of a REGISTER a disable met pending).
        ticks = [
            t0 + t
            for (t, state), (_, before) in zip(
                events[outcome:], events[outcome - 1 :], strict=False
            )
            if state in SENDS
            and before not in PENDING_EVENTS
            and not any(0 <= t - enabled <= 1 for enabled in enables)
        ]
        self.user, self.instance = user, instance
        self.behaviour: Behaviour = USER_BEHAVIOUR.get(user, "answers")
        self.registrar_up = True
        self.agent = FakeAgent(
            id=self.reg,
            name=user,
            state=f"{events[outcome][1]}_STATE",
            registration_timeout=granted,
            last_register_sent=math.floor(t0 + sent),
        )
        phase, period = (
            _fit_ticks(ticks, 2 * (timer // 2)) if ticks else (t0 + sent, None)
        )
        self.model = FollowingRegistrant(
            behaviour=self.behaviour,
            timer_interval=timer,
            phase=phase,
            synced_at=t0 + self.start,
            release=self.trace.release,
        )
        self.model.real_period = period
        self.model.real_sends = [t0 + t for t, state in events if state in SENDS]
        self.model.take_over(self.agent, t0 + self.start)

    def apply(self, action: str, now: float) -> None:
        """Do to the model what the scenario did to the real registration."""
        words = action.split()
        agent, model = self.agent, self.model
        if words[0] == "registrar" and self.user in MODE_USERS.get(
            words[1], {words[1]}
        ):
            self.behaviour = REGISTRAR_MODES[words[2]]
        elif words[0] in ("stop", "start") and words[1] == REGISTRAR_OF[self.instance]:
            self.registrar_up = words[0] == "start"
        elif words[0] == "password" and words[1] == self.reg:
            self.behaviour = "answers" if words[2] == "right" else "rejects"
        elif words[0] in ("disable", "enable") and words[1] == self.reg:
            getattr(model, words[0])(agent, now)
        elif words[0] == "reload" and words[1] == self.instance:
            model.reload(agent, now)
        model.set_behaviour(
            agent, self.behaviour if self.registrar_up else "silent", now
        )

    def expected(self) -> list[tuple[float, str]]:
        """Return the recorded state changes the model must reproduce."""
        return [
            event
            for event in real_events(self.trace, self.reg)
            if event[0] > self.start
        ]

    def run(self, until: float | None = None) -> list[tuple[float, str]]:
        """Replay the scenario (up to `until`); return the states entered, with times.

        Times in seconds from the trace's start.
        """
        t0, end = self.trace.t0, self.trace.end if until is None else until
        for line in self.trace.lines:
            if "action" in line and self.start < line["t"] <= end:
                self.apply(line["action"], t0 + line["t"])
        self.model.sync(self.agent, t0 + end)
        return [
            (when - t0, state.removesuffix("_STATE"))
            for when, state, _ in self.model.history
            if state not in SILENT_STATES
        ]


@pytest.mark.parametrize(("trace", "reg"), list(cases()))
def test_the_model_reproduces_the_real_registrant(trace: Trace, reg: str) -> None:
    """Same states in the same order, each within a second of the recorded time."""
    replay = Replay(trace, reg)
    real = replay.expected()
    modelled = replay.run()

    assert [state for _, state in modelled] == [state for _, state in real]
    late = [
        (round(real_t, 3), state, round(model_t - real_t, 3))
        for (real_t, state), (model_t, _) in zip(real, modelled, strict=True)
        if abs(model_t - real_t) > 1.0
    ]
    assert late == []


@pytest.mark.parametrize(("trace", "reg"), list(cases()))
def test_the_model_shows_the_real_registration_t_out(trace: Trace, reg: str) -> None:
    """At every change of reg_list, its registration_t_out is the model's.

    Within 1.5 s: the whole second of a moment known within a second.

    It is T + E - TI while registered and the retry threshold after a failure
    (in the future: a failed agent's `expires`, if Telzino shows this field).
    """
    replay = Replay(trace, reg)
    polls = [line for line in trace.of(reg) if "reg_list" in line]
    checked = 0
    for poll, following in itertools.pairwise([*polls, {"t": math.inf}]):
        fields = poll["reg_list"]
        # A second after the poll (the model's changes may come up to a second
        # off), while the recorded state still holds.
        at = poll["t"] + 1.0
        if at <= replay.start or following["t"] <= at:
            continue
        again = Replay(trace, reg)
        again.run(until=at)
        if again.agent.state != fields["state"]:
            continue  # the event test tells
        rto = again.model.registration_t_out
        modelled = None if rto is None else rto - trace.t0
        real = fields["registration_t_out"]
        if modelled is None or real is None:
            assert modelled == real, (poll, modelled)
        else:
            # Whole seconds of a time known within a second: 1.5 s.
            assert modelled == pytest.approx(real, abs=1.5), (poll, modelled)
        checked += 1
    assert checked >= len(polls) // 2


def _fit_ticks(ticks: list[float], nominal: float) -> tuple[float, float | None]:
    """Return the phase and period of the timer ticks (least squares).

    Each tick is numbered by the nominal period from the first one.
    """
    numbers = [round((tick - ticks[0]) / nominal) for tick in ticks]
    if len(set(numbers)) < 2:
        return ticks[0], None
    mean_n = sum(numbers) / len(numbers)
    mean_t = sum(ticks) / len(ticks)
    period = sum(
        (n - mean_n) * (t - mean_t) for n, t in zip(numbers, ticks, strict=True)
    ) / sum((n - mean_n) ** 2 for n in numbers)
    return mean_t - period * mean_n, period


# The rules one by one ----------------------------------------------------------


@pytest.fixture
def registered(fake: FakeTelzino, clock: FakeClock) -> tuple[str, Registrant]:
    """Return an agent registered for 3600 s, driven by the model (ticks at :00)."""
    clock.now = 1_000_000.0
    agent = fake.add_agent("Front desk")
    return agent.id, fake.simulate(agent.id, timer_interval=TIMER, phase=0.0)


def at(fake: FakeTelzino, agent_id: str, when: float) -> str:
    """Return the agent's state at `when`, as a status request would see it."""
    fake.clock.now = when  # type: ignore[attr-defined]
    fake.registrants[agent_id].sync(fake.agents[agent_id], when)
    return fake.agents[agent_id].state


def test_a_refresh_comes_between_two_timer_intervals_and_one_before_expiry(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """OpenSIPS 4.x: REGISTER at the first tick at or after T + E - 2 TI."""
    agent_id, registrant = registered
    # Registered at the tick before the model took over, replied 0.1 s later.
    assert fake.agents[agent_id].last_register_sent == 1_000_000
    assert registrant.registration_t_out == 1_000_000 + 3600 - TIMER
    assert registrant.refresh_point() == 1_000_000 + 3600 - 2 * TIMER
    assert at(fake, agent_id, 1_003_400.0 - 1) == "REGISTERED_STATE"
    assert at(fake, agent_id, 1_003_400.0) == "REGISTERING_STATE"
    assert fake.agents[agent_id].last_register_sent == 1_003_400
    delay = REPLY_DELAY["answers"]
    assert at(fake, agent_id, 1_003_400.0 + 1.5 * delay) == "AUTHENTICATING_STATE"
    assert at(fake, agent_id, 1_003_400.0 + 2.5 * delay) == "REGISTERED_STATE"
    assert registrant.registration_t_out == 1_003_400 + 3600 - TIMER
    assert registrant.registers_sent == 1


@pytest.mark.parametrize(
    ("phase", "period"), [(0.5, 300 - 2 * TIMER), (0.999, 300 - TIMER)]
)
def test_the_period_depends_on_the_second_of_the_200_ok(
    fake: FakeTelzino, clock: FakeClock, phase: float, period: float
) -> None:
    """A 200 OK in the second after its tick's moves each refresh a whole TI later.

    OpenSIPS counts in whole seconds; the real timer drifts by up to half a
    second, so a registration's period flips between E - 2 TI and E - TI.
    """
    clock.now = 1_000_000.0
    agent = fake.add_agent("Front desk", registration_timeout=300)
    fake.simulate(agent.id, timer_interval=TIMER, phase=phase)
    sent = [agent.last_register_sent]
    for second in range(1_000_000, 1_002_000):
        at(fake, agent.id, second + 0.99)
        if agent.last_register_sent != sent[-1]:
            sent.append(agent.last_register_sent)
    assert len(sent) > 4
    assert {later - earlier for earlier, later in itertools.pairwise(sent)} == {period}


def recorded_refreshes() -> tuple[int, int]:
    """Count the recorded refreshes E - 2 TI after the last one and E - TI after (4.x).

    Of registrations whose expiry is a whole number of timer intervals and
    whose registrar answers at once (a slow one moves the 200 OK, and so the
    threshold, by seconds).
    """
    on_time = late = 0
    for path in TRACES:
        trace = load(path)
        if trace.release != "4.x":
            continue  # 3.x refreshes at a later threshold
        for reg, config in trace.header["registrations"].items():
            timer, expiry = config["timer_interval"], config["expiry"]
            sent: float | None = None
            before = None
            for when, state in real_events(trace, reg):
                if state == "REGISTERING":
                    if before == "REGISTERED" and sent is not None:
                        gap = when - sent
                        on_time += abs(gap - (expiry - 2 * timer)) < MARGINAL
                        late += abs(gap - (expiry - timer)) < MARGINAL
                    sent = when
                before = state
    return on_time, late


def test_the_model_refreshes_a_tick_late_as_often_as_the_real_registrant(
    fake: FakeTelzino, clock: FakeClock
) -> None:
    """The timer's drift moves a refresh a whole TI later: as often as recorded.

    The recorded share is LATE_TICK_SHARE; the model with it, over 20
    registrations of 300 s on a 100 s timer, refreshes that share a tick late
    (within the spread of some 700 refreshes).
    """
    on_time, late = recorded_refreshes()
    assert (on_time, late) == (56, 24)
    assert late / (on_time + late) == LATE_TICK_SHARE
    clock.now = 1_000_000.0
    periods: list[float] = []
    for number in range(20):
        agent = fake.add_agent(f"Agent {number}", registration_timeout=300)
        registrant = fake.simulate(
            agent.id,
            timer_interval=TIMER,
            phase=number * 4.7 % TIMER,
            late_tick_share=LATE_TICK_SHARE,
        )
        sent = [agent.last_register_sent]
        # REGISTERs of a 300 s binding are at least 100 s apart.
        for second in range(1_000_000, 1_000_000 + 20 * 250, 50):
            registrant.sync(agent, second)
            if agent.last_register_sent != sent[-1]:
                sent.append(agent.last_register_sent)
        periods += [b - a for a, b in itertools.pairwise(sent)]
    assert set(periods) == {300 - 2 * TIMER, 300 - TIMER}
    share = periods.count(300 - TIMER) / len(periods)
    assert abs(share - LATE_TICK_SHARE) < 0.07


def test_opensips_3_refreshes_within_the_last_timer_interval(
    fake: FakeTelzino, clock: FakeClock
) -> None:
    """OpenSIPS 3.x (up to 3.6.8): REGISTER at the first tick at or after T + E - TI."""
    clock.now = 1_000_000.0
    agent = fake.add_agent("Front desk")
    registrant = fake.simulate(agent.id, timer_interval=TIMER, phase=0.0, release="3.x")
    assert registrant.refresh_point() == 1_000_000 + 3600 - TIMER
    assert at(fake, agent.id, 1_003_499.0) == "REGISTERED_STATE"
    assert at(fake, agent.id, 1_003_500.0) == "REGISTERING_STATE"


@pytest.mark.parametrize(
    ("behaviour", "failed", "after"),
    [
        ("silent", "REGISTER_TIMEOUT_STATE", TRANSACTION_TIMEOUT),
        # A 401, then the rejection; or an error before any challenge.
        ("rejects", "WRONG_CREDENTIALS_STATE", 2 * REPLY_DELAY["rejects"]),
        ("errors", "REGISTRAR_ERROR_STATE", REPLY_DELAY["errors"]),
    ],
)
def test_a_failure_is_retried_only_after_e_minus_ti(
    fake: FakeTelzino,
    registered: tuple[str, Registrant],
    behaviour: Behaviour,
    failed: str,
    after: float,
) -> None:
    """Failed at refresh; the registrar back at once; retried E - TI after the failure."""
    agent_id, registrant = registered
    registrant.set_behaviour(fake.agents[agent_id], behaviour, 1_000_000.0)
    tick = 1_003_400.0
    assert at(fake, agent_id, tick + after - 0.01) != failed
    assert at(fake, agent_id, tick + after + 0.001) == failed
    registrant.set_behaviour(fake.agents[agent_id], "answers", tick + after + 1)
    threshold = int(tick + after) + 3600 - TIMER
    # The retry threshold is in the future: `expires` if Telzino shows it.
    assert registrant.registration_t_out == threshold
    assert at(fake, agent_id, threshold - 1) == failed
    retry = registrant.next_tick(threshold - 0.001)
    assert at(fake, agent_id, retry + 0.2) == "REGISTERED_STATE"


def test_a_slow_registrar_answers_within_the_transaction(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """8 s per reply: REGISTERING, AUTHENTICATING at +8 s, REGISTERED at +16 s."""
    agent_id, registrant = registered
    registrant.set_behaviour(fake.agents[agent_id], "slow", 1_000_000.0)
    assert at(fake, agent_id, 1_003_407.9) == "REGISTERING_STATE"
    assert at(fake, agent_id, 1_003_408.0) == "AUTHENTICATING_STATE"
    assert at(fake, agent_id, 1_003_416.0) == "REGISTERED_STATE"


def test_disable_unregisters_and_enable_registers_at_once(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """unREGISTER, then NOT_REGISTERED with enabled off; enabling sends a REGISTER."""
    agent_id, registrant = registered
    agent = fake.agents[agent_id]
    registrant.disable(agent, 1_000_010.0)
    assert agent.state == "UNREGISTERING_STATE"
    assert at(fake, agent_id, 1_000_010.003) == "AUTHENTICATING_UNREGISTER_STATE"
    assert at(fake, agent_id, 1_000_010.2) == "NOT_REGISTERED_STATE"
    assert not agent.enabled
    assert registrant.registration_t_out is None
    assert at(fake, agent_id, 1_005_000.0) == "NOT_REGISTERED_STATE"
    registrant.enable(agent, 1_005_000.5)
    assert agent.state == "REGISTERING_STATE"
    assert agent.last_register_sent == 1_005_000
    assert at(fake, agent_id, 1_005_000.6) == "REGISTERED_STATE"


def test_a_disable_during_a_pending_register_unregisters_after_its_reply(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """As the module does: the 200 OK first, then the unREGISTER; enable registers."""
    agent_id, registrant = registered
    agent = fake.agents[agent_id]
    registrant.set_behaviour(agent, "slow", 1_000_000.0)
    assert at(fake, agent_id, 1_003_401.0) == "REGISTERING_STATE"
    registrant.disable(agent, 1_003_402.0)
    assert (agent.state, agent.enabled) == ("REGISTERING_STATE", False)
    assert at(fake, agent_id, 1_003_408.0) == "AUTHENTICATING_STATE"
    # The 200 OK at +16 s, and at once the unREGISTER.
    assert at(fake, agent_id, 1_003_415.9) == "AUTHENTICATING_STATE"
    assert at(fake, agent_id, 1_003_416.0) == "UNREGISTERING_STATE"
    assert "REGISTERED_STATE" not in [
        state for when, state, _ in registrant.history if when > 1_003_402.0
    ]
    assert at(fake, agent_id, 1_003_424.0) == "AUTHENTICATING_UNREGISTER_STATE"
    assert at(fake, agent_id, 1_003_432.0) == "NOT_REGISTERED_STATE"
    assert at(fake, agent_id, 1_007_000.0) == "NOT_REGISTERED_STATE"
    registrant.enable(agent, 1_007_000.5)
    assert agent.state == "REGISTERING_STATE"


def test_disabling_a_failed_registration_waits_for_its_retry(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """Only `enabled` changes; the retry tick sends the unREGISTER."""
    agent_id, registrant = registered
    agent = fake.agents[agent_id]
    registrant.set_behaviour(agent, "errors", 1_000_000.0)
    assert at(fake, agent_id, 1_003_401.0) == "REGISTRAR_ERROR_STATE"
    registrant.disable(agent, 1_003_410.0)
    assert (agent.state, agent.enabled) == ("REGISTRAR_ERROR_STATE", False)
    registrant.set_behaviour(agent, "answers", 1_003_411.0)
    retry = registrant.next_tick(1_003_400 + 3600 - TIMER - 0.001)
    assert at(fake, agent_id, retry + 0.2) == "NOT_REGISTERED_STATE"


def test_a_reload_recreates_what_is_not_registered(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """A failed registration becomes NOT_REGISTERED and registers at its next tick."""
    agent_id, registrant = registered
    agent = fake.agents[agent_id]
    registrant.reload(agent, 1_000_050.0)
    assert agent.state == "REGISTERED_STATE"  # kept
    registrant.set_behaviour(agent, "errors", 1_000_050.0)
    assert at(fake, agent_id, 1_003_401.0) == "REGISTRAR_ERROR_STATE"
    registrant.set_behaviour(agent, "answers", 1_003_410.0)
    registrant.reload(agent, 1_003_420.0)
    assert (agent.state, agent.last_register_sent) == ("NOT_REGISTERED_STATE", None)
    assert at(fake, agent_id, 1_003_500.2) == "REGISTERED_STATE"


def test_expires_can_report_the_binding_expiry(
    fake: FakeTelzino, clock: FakeClock
) -> None:
    """Telzino may show the binding's expiry instead of OpenSIPS' registration_t_out."""
    clock.now = 1_000_000.0
    agent = fake.add_agent("Front desk")
    fake.simulate(agent.id, timer_interval=TIMER, expires_reports="binding")
    assert agent.expires == 1_000_000.0 + 0.1 + 3600
    agent = fake.add_agent("Sales line")
    fake.simulate(agent.id, timer_interval=TIMER)
    assert agent.expires == 1_000_000 + 3600 - TIMER


async def test_the_status_endpoint_and_the_control_api_drive_the_model(
    fake: FakeTelzino, fake_url: str, clock: FakeClock
) -> None:
    """Status requests see the model's state; the control API changes behaviour."""
    clock.now = 1_000_000.0
    agent = fake.add_agent("Front desk")
    token = fake.add_token()
    control = f"{fake_url}/_fake/agents/{agent.id}/registrant"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            control, json={"timer_interval": TIMER, "behaviour": "silent"}
        ) as response:
            assert response.status == 200
            assert (await response.json())["behaviour"] == "silent"
        for body, status in (
            ({"behaviour": "sleepy"}, 400),
            ({"action": "explode"}, 400),
            ({"no_such_parameter": 1}, 200),  # attached already: ignored
        ):
            async with session.post(control, json=body) as response:
                assert response.status == status
        async with session.post(
            f"{fake_url}/_fake/agents/00000000-0000-4000-8000-00000000dead/registrant",
            json={},
        ) as response:
            assert response.status == 404

        clock.now = 1_003_400.0 + TRANSACTION_TIMEOUT + 1
        async with session.get(
            f"{fake_url}/v1/agents/{agent.id}/sip/registration/status",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            data = (await response.json())["data"]
        assert data["state"] == "REGISTER_TIMEOUT_STATE"
        assert data["isRegistered"] is False

        async with session.post(control, json={"action": "disable"}) as response:
            body = await response.json()
        assert (body["state"], body["enabled"]) == ("REGISTER_TIMEOUT_STATE", False)


async def test_attaching_with_unknown_parameters_is_refused(
    fake: FakeTelzino, fake_url: str
) -> None:
    """A typo in the model's parameters is a 400, not a silent default."""
    agent = fake.add_agent("Front desk")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake_url}/_fake/agents/{agent.id}/registrant", json={"timer": 5}
        ) as response,
    ):
        assert response.status == 400


def test_setting_a_state_by_hand_takes_over_from_the_model(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """set_state clears what the model had scheduled; it goes on from there."""
    agent_id, registrant = registered
    assert at(fake, agent_id, 1_003_400.0) == "REGISTERING_STATE"
    fake.set_state(agent_id, "REGISTRAR_ERROR_STATE")
    assert registrant.pending == []
    assert at(fake, agent_id, 1_003_450.0) == "REGISTRAR_ERROR_STATE"
    assert at(fake, agent_id, 1_003_400 + 3600 - TIMER + 0.2) == "REGISTERED_STATE"
