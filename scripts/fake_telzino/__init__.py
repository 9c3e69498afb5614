"""A fake Telzino API for the tests, the benchmarks and `scripts/develop`.

Serves what the integration uses over real HTTP on loopback, with faults,
counters and a control API. `python -m scripts.fake_telzino --demo` runs it.
"""

from .agent import FakeAgent
from .const import (
    AFTER_HOURS,
    CLIENT_ID,
    CLIENT_SECRET,
    FRONT_DESK,
    ORGANIZATION_ID,
    SALES_LINE,
    WAREHOUSE,
)
from .demo import DEMO_FLAPPING_AGENT, flap_demo_agent, seed_demo
from .ratelimit import RateLimit, Tiers
from .registrant import BEHAVIOURS, LATE_TICK_SHARE, TRANSACTION_TIMEOUT, Registrant
from .server import (
    AGENT,
    AGENTS,
    CONTROL_PREFIX,
    ENDPOINTS,
    STATES,
    STATUS,
    TOKEN,
    FakeTelzino,
    Fault,
    Stats,
    serve,
)

__all__ = [
    "AFTER_HOURS",
    "AGENT",
    "AGENTS",
    "BEHAVIOURS",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CONTROL_PREFIX",
    "DEMO_FLAPPING_AGENT",
    "ENDPOINTS",
    "FRONT_DESK",
    "LATE_TICK_SHARE",
    "ORGANIZATION_ID",
    "SALES_LINE",
    "STATES",
    "STATUS",
    "TOKEN",
    "TRANSACTION_TIMEOUT",
    "WAREHOUSE",
    "FakeAgent",
    "FakeTelzino",
    "Fault",
    "RateLimit",
    "Registrant",
    "Stats",
    "Tiers",
    "flap_demo_agent",
    "seed_demo",
    "serve",
]
