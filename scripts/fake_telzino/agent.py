"""An agent and its SIP registration, as the fake API holds and reports them.

Its own module, so that the server and the registrant model that drives it
both import it and neither imports the other.
"""

from dataclasses import dataclass

from .const import ORGANIZATION_ID


@dataclass
class FakeAgent:
    """An agent and its registration as the fake API reports them."""

    id: str
    name: str
    organization_id: str = ORGANIZATION_ID
    status: str = "active"
    state: str = "REGISTERED_STATE"
    # Set only for states the server does not know (its STATES).
    state_code: int | None = None
    enabled: bool = True
    registration_timeout: int = 3600
    last_register_sent: float | None = None
    expires: float | None = None
    error_message: str | None = None
