"""The faults a loaded entry meets, one row each: the fault matrix and the secrets test."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant

from scripts.fake_telzino import FRONT_DESK, STATUS, FakeTelzino
from tests.common import poll, slow_poll

FIVE_MB = "x" * (5 * 1024 * 1024)

# What a fault does to the entities.
OUTAGE = "outage"  # every agent unavailable
ONE_AGENT = "one agent"  # Front desk unavailable, Sales line still updated
REAUTH = "reauth"  # unavailable, and a reauth flow asks for credentials
HARMLESS = "harmless"  # nothing the user sees changes

type Action = Callable[[FakeTelzino], Awaitable[None] | None]


@dataclass(frozen=True)
class Fault:
    """One row of the matrix."""

    inject: Action
    effect: str
    clear: Action = FakeTelzino.clear_faults
    token_entry: bool = False
    # Answers that take time: let frozen time pass in steps during the poll.
    slow: bool = False

    async def start(self, fake: FakeTelzino) -> None:
        """Inject the fault."""
        if (pending := self.inject(fake)) is not None:
            await pending

    async def end(self, fake: FakeTelzino) -> None:
        """Clear the fault."""
        if (pending := self.clear(fake)) is not None:
            await pending

    async def poll(self, hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
        """One poll while the fault is on."""
        await (slow_poll(hass, freezer) if self.slow else poll(hass, freezer))


def on_status(**fault: Any) -> Action:
    """Inject a fault into every status request."""
    return lambda fake: fake.inject(STATUS, **fault) and None


def reject_credentials(fake: FakeTelzino) -> None:
    """Forget every token and the client: the credentials are rejected."""
    fake.expire_tokens()
    fake.clients = {}


async def refuse(fake: FakeTelzino) -> None:
    """Refuse connections."""
    await fake.stop_listening()


async def listen(fake: FakeTelzino) -> None:
    """Accept connections again."""
    await fake.start_listening()


FAULTS = {
    "401 with a pasted token": Fault(
        FakeTelzino.expire_tokens, REAUTH, token_entry=True
    ),
    "401 with client credentials": Fault(FakeTelzino.expire_tokens, HARMLESS),
    "client credentials rejected": Fault(reject_credentials, REAUTH),
    "403": Fault(on_status(status=403), OUTAGE),
    "404 for one agent": Fault(
        lambda fake: fake.inject(STATUS, FRONT_DESK, status=404) and None, ONE_AGENT
    ),
    "500": Fault(on_status(status=500), OUTAGE),
    "502 with an HTML body": Fault(
        on_status(
            status=502, body="<html>Bad gateway</html>", content_type="text/html"
        ),
        OUTAGE,
    ),
    "503": Fault(on_status(status=503), OUTAGE),
    "request timeout": Fault(on_status(latency=1.0), OUTAGE, slow=True),
    "connection refused": Fault(refuse, OUTAGE, clear=listen),
    "connection reset mid-body": Fault(
        on_status(drop="mid_body", body='{"success": true, "data": {}}'), OUTAGE
    ),
    "invalid JSON": Fault(on_status(status=200, body="{not json"), OUTAGE),
    "JSON without data": Fault(on_status(status=200, body='{"success": true}'), OUTAGE),
    "wrong field types": Fault(
        on_status(
            status=200,
            body='{"data": {"state": "REGISTERED_STATE", "isRegistered": "true"}}',
        ),
        OUTAGE,
    ),
    "empty body": Fault(on_status(status=200, body=""), OUTAGE),
    "5 MB body": Fault(on_status(status=200, body=FIVE_MB), OUTAGE),
}
