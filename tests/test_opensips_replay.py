"""The integration on the real registrant's recorded behaviour.

Every registration of every trace in tests/opensips/ becomes an agent of the
fake API, whose status shows, second by second under Home Assistant's frozen
clock, what the real module reported then: the exact state changes, and
`reg_list`'s fields mapped as Telzino most likely maps them (`expires` =
registration_t_out, `registrationTimeout` = reg_list's expires). The
integration polls it every 60 s with the refresh watch on. Checked for every
second: no `lost` while the real registration could receive calls (a refresh
that ends registered included); every real loss of a minute or more shown;
never a future "Registration expires" for a registration that is not
registered. Played again with Telzino's clock 90 s ahead of Home Assistant's
and 90 s behind (its `Date` headers and its times), and with
`lastRegisterSent` frozen at its first value (an API that does not update
it): the same must hold.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
import math
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.telzino.const import REFRESH_GRACE
from scripts.fake_telzino import FakeAgent, FakeTelzino
from tests.common import make_entry, setup_entry
from tests.traces import TRACES, Trace, load, real_events

REFRESHING = {"REGISTERING", "AUTHENTICATING"}
FAILED = {"REGISTER_TIMEOUT", "WRONG_CREDENTIALS", "REGISTRAR_ERROR", "INTERNAL_ERROR"}
# A loss is shown when it lasts this long: the polling interval and a second.
SHOWN_WITHIN = 61


@dataclass(frozen=True)
class Api:
    """How Telzino's API shows the registrant: its clock, and its REGISTER times."""

    ahead: float = 0.0
    freezes_register_time: bool = False
    # A loss that lasts this long is shown within it.
    shown_within: int = SHOWN_WITHIN


APIS = {
    "on time": Api(),
    "90 s ahead": Api(ahead=90.0),
    "90 s behind": Api(ahead=-90.0),
    # When a refresh's REGISTER went is not known: a refresh counts as one
    # for the grace from when it was last seen registered, unless a read
    # sees it fail sooner.
    "lastRegisterSent frozen": Api(
        freezes_register_time=True,
        shown_within=SHOWN_WITHIN + int(REFRESH_GRACE.total_seconds()),
    ),
}


@dataclass
class Registration:
    """One recorded registration, played through a fake agent."""

    reg: str
    agent: FakeAgent
    events: list[tuple[float, str]]
    polls: list[tuple[float, dict[str, Any]]]
    # Per second of the trace: could it receive calls, its state, whether it
    # was enabled, and whether Registered was off.
    seconds: dict[int, tuple[bool, str, bool, bool]] = field(default_factory=dict)
    lost_at: list[int] = field(default_factory=list)
    expires_while_failed: list[int] = field(default_factory=list)

    def show(self, trace: Trace, now: float, api: Api) -> None:
        """Set the agent to what the real registrant reported at `now` (from start).

        Its times on the API's clock, `api.ahead` of the trace's.
        """
        fields = next((f for t, f in reversed(self.polls) if t <= now), None)
        if fields is None:
            return
        agent = self.agent
        # As reg_list shows it, the way Telzino serves it: its state with its
        # own fields, not the event routes' (which reg_list may lag by a second).
        agent.state = fields["state"]
        agent.enabled = fields["enabled"] == "yes"
        agent.registration_timeout = fields["expires"]
        rto, sent = fields["registration_t_out"], fields["last_register_sent"]
        agent.expires = None if rto is None else trace.t0 + rto + api.ahead
        if api.freezes_register_time and agent.last_register_sent is not None:
            return
        agent.last_register_sent = None if sent is None else trace.t0 + sent + api.ahead


def can_receive_calls(events: list[tuple[float, str]], now: float) -> bool:
    """Tell whether registered, or refreshing a registration that stays registered."""
    before = [state for t, state in events if t <= now]
    if not before:
        return False
    if before[-1] == "REGISTERED":
        return True
    if before[-1] not in REFRESHING:
        return False
    # A refresh: registered before it, registered after it.
    start = max(
        i for i, (t, state) in enumerate(events) if t <= now and state == "REGISTERING"
    )
    came_from = [state for _, state in events[:start]]
    outcome = next(
        (state for t, state in events[start:] if state not in REFRESHING), None
    )
    return bool(came_from) and came_from[-1] == "REGISTERED" and outcome == "REGISTERED"


def cases() -> list[Any]:
    """Return every trace with every API.

    The API's other clocks and fields are our logic only, which the newest
    Home Assistant's run covers.
    """
    return [
        pytest.param(
            path,
            name,
            id=f"{path.stem}-{name}",
            marks=[] if name == "on time" else [pytest.mark.simulation],
        )
        for path in TRACES
        for name in APIS
    ]


@pytest.mark.parametrize(("path", "api_name"), cases())
async def test_the_integration_on_the_real_registrant(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    path: Any,
    api_name: str,
) -> None:
    """No false alarm, no missed loss, no retry threshold shown as an expiry."""
    trace = load(path)
    api = APIS[api_name]
    registrations: list[Registration] = []
    fake.clock = lambda: time.time() + api.ahead
    fake.date_from_clock = True
    fake.close_connections = True
    for reg in trace.header["registrations"]:
        events = real_events(trace, reg)
        if not events:
            continue
        polls = [
            (line["t"], line["reg_list"])
            for line in trace.of(reg)
            if "reg_list" in line
        ]
        agent = fake.add_agent(reg.replace("/", " "), state="NOT_REGISTERED_STATE")
        registrations.append(Registration(reg, agent, events, polls))
    first = min(r.polls[0][0] for r in registrations)
    freezer.move_to(datetime.fromtimestamp(trace.t0 + first, UTC))
    for registration in registrations:
        registration.show(trace, first, api)
    entry = await setup_entry(
        hass, make_entry(fake_url, [r.agent.id for r in registrations])
    )
    entity = {
        r.reg: r.agent.name.lower().replace(" ", "_").replace("/", "_")
        for r in registrations
    }
    last_event: dict[str, str | None] = {r.reg: None for r in registrations}

    for second in range(math.ceil(first), math.floor(trace.end)):
        freezer.move_to(datetime.fromtimestamp(trace.t0 + second, UTC))
        for registration in registrations:
            registration.show(trace, second, api)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        for registration in registrations:
            name = entity[registration.reg]
            state = registration.agent.state.removesuffix("_STATE")
            registration.seconds[second] = (
                can_receive_calls(registration.events, second),
                state,
                registration.agent.enabled,
                hass.states.get(f"binary_sensor.{name}_registered").state == STATE_OFF,
            )
            event = hass.states.get(f"event.{name}_registration")
            if event.state != last_event[registration.reg]:
                if last_event[registration.reg] is not None and (
                    event.attributes.get("event_type") == "lost"
                ):
                    registration.lost_at.append(second)
                last_event[registration.reg] = event.state
            # As the integration read it: a failed state never shows an expiry.
            shown = hass.states.get(f"sensor.{name}_registration_state").state
            expires = hass.states.get(f"sensor.{name}_registration_expires").state
            if shown.upper() in FAILED and expires != STATE_UNKNOWN:
                registration.expires_while_failed.append(second)
    await hass.config_entries.async_unload(entry.entry_id)

    # A `lost` while the registration could receive calls, then or a second
    # before (Home Assistant reads the fake a moment after it changes).
    false_alarms = {
        r.reg: [
            s
            for s in r.lost_at
            if r.seconds[s][0] and r.seconds.get(s - 1, r.seconds[s])[0]
        ]
        for r in registrations
    }
    assert {reg: alarms for reg, alarms in false_alarms.items() if alarms} == {}
    missed = {}
    for registration in registrations:
        unseen = [
            (start, end)
            for start, end in _losses(registration)
            if end - start >= api.shown_within
            and not any(
                registration.seconds[s][3]
                for s in range(start, start + api.shown_within + 1)
            )
        ]
        if unseen:
            missed[registration.reg] = unseen
    assert missed == {}
    assert {
        r.reg: r.expires_while_failed for r in registrations if r.expires_while_failed
    } == {}
    assert any(_losses(r) for r in registrations)  # losses were there to see


def _losses(registration: Registration) -> list[tuple[int, int]]:
    """Return the periods in which the enabled registration could not receive calls."""
    losses: list[tuple[int, int]] = []
    start: int | None = None
    for second in sorted(registration.seconds):
        receiving, _, enabled, _ = registration.seconds[second]
        lost = not receiving and enabled
        if lost and start is None:
            start = second
        elif not lost and start is not None:
            losses.append((start, second))
            start = None
    if start is not None:
        losses.append((start, max(registration.seconds)))
    return losses
