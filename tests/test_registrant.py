"""The fake API's model of OpenSIPS uac_registrant, under frozen time."""

from typing import Any

import aiohttp
import pytest

from scripts.fake_telzino import TRANSACTION_TIMEOUT, FakeTelzino, Registrant
from tests.common import FakeClock

TIMER = 100.0


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


def test_a_refresh_happens_at_the_first_tick_after_the_refresh_point(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """Refresh point = expiry - timer interval; REGISTER at the next tick, 401, 200."""
    agent_id, registrant = registered
    # Registered at the tick before the model took over, replied 0.1 s later.
    assert fake.agents[agent_id].last_register_sent == 1_000_000.0
    expiry = 1_000_000.0 + 0.1 + 3600
    assert fake.agents[agent_id].expires == expiry
    tick = registrant.next_tick(expiry - TIMER)
    assert tick == 1_003_600.0  # ticks are at multiples of 100 s
    assert at(fake, agent_id, tick - 1) == "REGISTERED_STATE"
    assert at(fake, agent_id, tick) == "REGISTERING_STATE"
    assert fake.agents[agent_id].last_register_sent == tick
    assert at(fake, agent_id, tick + 0.06) == "AUTHENTICATING_STATE"
    assert at(fake, agent_id, tick + 0.2) == "REGISTERED_STATE"
    assert fake.agents[agent_id].expires == pytest.approx(tick + 0.1 + 3600)
    assert registrant.registers_sent == 1


@pytest.mark.parametrize(
    ("behaviour", "failed", "after"),
    [
        ("silent", "REGISTER_TIMEOUT_STATE", TRANSACTION_TIMEOUT),
        ("rejects", "WRONG_CREDENTIALS_STATE", 0.2),
        ("errors", "REGISTRAR_ERROR_STATE", 0.2),
    ],
)
def test_a_failed_refresh_and_its_retry(
    fake: FakeTelzino,
    registered: tuple[str, Registrant],
    behaviour: Any,
    failed: str,
    after: float,
) -> None:
    """The registrar's behaviour decides the outcome; a failure retries next tick."""
    agent_id, registrant = registered
    registrant.set_behaviour(fake.agents[agent_id], behaviour, 1_000_000.0)
    tick = 1_003_600.0
    assert at(fake, agent_id, tick) == "REGISTERING_STATE"
    assert at(fake, agent_id, tick + after + 0.01) == failed
    assert fake.agents[agent_id].expires is None
    assert at(fake, agent_id, tick + TIMER) == "REGISTERING_STATE"
    registrant.set_behaviour(fake.agents[agent_id], "answers", tick + TIMER)
    assert at(fake, agent_id, tick + 2 * TIMER + 1) == "REGISTERED_STATE"


def test_a_slow_registrar_answers_within_the_transaction(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """Slow answers: still registering after seconds, registered before the timeout."""
    agent_id, registrant = registered
    registrant.set_behaviour(fake.agents[agent_id], "slow", 1_000_000.0)
    assert at(fake, agent_id, 1_003_605.0) == "REGISTERING_STATE"
    assert at(fake, agent_id, 1_003_610.0) == "AUTHENTICATING_STATE"
    assert at(fake, agent_id, 1_003_620.0) == "REGISTERED_STATE"


def test_a_change_of_settings_shows_not_found_while_syncing(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """NOT_FOUND for the sync window, then registered at the next tick."""
    agent_id, registrant = registered
    registrant.reconfigure(fake.agents[agent_id], 1_000_010.0)
    assert at(fake, agent_id, 1_000_012.0) == "NOT_FOUND"
    assert at(fake, agent_id, 1_000_016.0) == "NOT_REGISTERED_STATE"
    assert at(fake, agent_id, 1_000_100.2) == "REGISTERED_STATE"


def test_disable_unregisters_and_enable_registers_again(
    fake: FakeTelzino, registered: tuple[str, Registrant]
) -> None:
    """unREGISTER, then NOT_REGISTERED with enabled off, left alone by the ticks."""
    agent_id, registrant = registered
    agent = fake.agents[agent_id]
    registrant.disable(agent, 1_000_010.0)
    assert agent.state == "AUTHENTICATING_UNREGISTER_STATE"
    assert at(fake, agent_id, 1_000_011.0) == "NOT_REGISTERED_STATE"
    assert at(fake, agent_id, 1_001_000.0) == "NOT_REGISTERED_STATE"
    assert not agent.enabled
    registrant.enable(agent, 1_001_000.0)
    assert agent.enabled
    assert at(fake, agent_id, 1_001_100.2) == "REGISTERED_STATE"


def test_expires_can_report_the_refresh_point(
    fake: FakeTelzino, clock: FakeClock
) -> None:
    """Telzino may show OpenSIPS' refresh point instead of the binding's expiry."""
    clock.now = 1_000_000.0
    agent = fake.add_agent("Front desk")
    fake.simulate(agent.id, timer_interval=TIMER, expires_reports="refresh_point")
    assert agent.expires == 1_000_000.0 + 0.1 + 3600 - TIMER


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

        clock.now = 1_003_600.0 + TRANSACTION_TIMEOUT + 1
        async with session.get(
            f"{fake_url}/v1/agents/{agent.id}/sip/registration/status",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            data = (await response.json())["data"]
        assert data["state"] == "REGISTER_TIMEOUT_STATE"
        assert data["isRegistered"] is False

        async with session.post(control, json={"action": "disable"}) as response:
            assert (await response.json())["state"] == "AUTHENTICATING_UNREGISTER_STATE"


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
    assert at(fake, agent_id, 1_003_600.0) == "REGISTERING_STATE"
    fake.set_state(agent_id, "REGISTRAR_ERROR_STATE")
    assert registrant.pending == []
    assert at(fake, agent_id, 1_003_650.0) == "REGISTRAR_ERROR_STATE"
    assert at(fake, agent_id, 1_003_700.2) == "REGISTERED_STATE"
