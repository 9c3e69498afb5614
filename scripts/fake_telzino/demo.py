"""Demo agents for local runs: one healthy, one flapping, two in trouble."""

import asyncio
import itertools

from .const import AFTER_HOURS, FRONT_DESK, SALES_LINE, WAREHOUSE
from .registrant import Behaviour
from .server import FakeTelzino

# Loses and regains its registration, so that the demo shows changes.
DEMO_FLAPPING_AGENT = SALES_LINE


def seed_demo(fake: FakeTelzino) -> None:
    """Demo agents in several states.

    Sales line is driven by the registrant model with a short registration
    (120 s, a 20 s timer), so that its refreshes, and the refresh watch, show
    within minutes.
    """
    fake.add_agent("Front desk", FRONT_DESK)
    fake.add_agent("Sales line", DEMO_FLAPPING_AGENT, registration_timeout=120)
    fake.simulate(DEMO_FLAPPING_AGENT, timer_interval=20)
    fake.add_agent("After-hours support", AFTER_HOURS, state="WRONG_CREDENTIALS_STATE")
    fake.add_agent("Warehouse", WAREHOUSE, state="NOT_FOUND")


async def flap_demo_agent(fake: FakeTelzino, period: float = 180) -> None:
    """Let the "Sales line" registrar reject, then accept, every `period` seconds.

    The registration is lost at its next refresh, and back at the next retry.
    """
    behaviours: tuple[Behaviour, ...] = ("rejects", "answers")
    agent = fake.agents[DEMO_FLAPPING_AGENT]
    registrant = fake.registrants[DEMO_FLAPPING_AGENT]
    for step in itertools.count():
        await asyncio.sleep(period)
        registrant.set_behaviour(agent, behaviours[step % 2], fake.clock())
