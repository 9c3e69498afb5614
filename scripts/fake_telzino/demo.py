"""Demo agents for local runs: one healthy, one flapping, two in trouble."""

import asyncio
import itertools

from .const import AFTER_HOURS, FRONT_DESK, SALES_LINE, WAREHOUSE
from .server import FakeTelzino

# Loses and regains its registration, so that the demo shows changes.
DEMO_FLAPPING_AGENT = SALES_LINE


def seed_demo(fake: FakeTelzino) -> None:
    """Demo agents in several states."""
    fake.add_agent("Front desk", FRONT_DESK)
    fake.add_agent("Sales line", DEMO_FLAPPING_AGENT)
    fake.add_agent("After-hours support", AFTER_HOURS, state="WRONG_CREDENTIALS_STATE")
    fake.add_agent("Warehouse", WAREHOUSE, state="NOT_FOUND")


async def flap_demo_agent(fake: FakeTelzino, period: float = 180) -> None:
    """Lose and regain the "Sales line" registration every `period` seconds."""
    states = ("REGISTER_TIMEOUT_STATE", "REGISTERED_STATE")
    for step in itertools.count():
        await asyncio.sleep(period)
        fake.set_state(DEMO_FLAPPING_AGENT, states[step % 2])
