"""What the Telzino API returns, parsed into typed, immutable models."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import math
from typing import Any, Final, Self

from .exceptions import TelzinoInvalidResponseError

# A Unix time above this is in milliseconds (in seconds it would be year 5138).
_MILLISECONDS_ABOVE: Final = 1e11


class RegistrationState(StrEnum):
    """Registration state, keyed on the API's state name (never its code)."""

    NOT_REGISTERED = "not_registered"
    REGISTERING = "registering"
    AUTHENTICATING = "authenticating"
    # Waiting for the reply to an unREGISTER (OpenSIPS codes 8 and 9), which
    # Telzino does not document: the registration is being disabled.
    UNREGISTERING = "unregistering"
    REGISTERED = "registered"
    REGISTER_TIMEOUT = "register_timeout"
    INTERNAL_ERROR = "internal_error"
    WRONG_CREDENTIALS = "wrong_credentials"
    REGISTRAR_ERROR = "registrar_error"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"

    @classmethod
    def from_api(cls, name: str) -> Self:
        """Map an API state name; names this client does not know are UNKNOWN."""
        return cls(API_STATE_NAMES.get(name, cls.UNKNOWN))


# The API's state names. NOT_FOUND and NOT_REGISTERED_STATE share code 0,
# which is why states are keyed on the name.
API_STATE_NAMES: Final[Mapping[str, RegistrationState]] = {
    "NOT_REGISTERED_STATE": RegistrationState.NOT_REGISTERED,
    "REGISTERING_STATE": RegistrationState.REGISTERING,
    "AUTHENTICATING_STATE": RegistrationState.AUTHENTICATING,
    "REGISTERED_STATE": RegistrationState.REGISTERED,
    "REGISTER_TIMEOUT_STATE": RegistrationState.REGISTER_TIMEOUT,
    "INTERNAL_ERROR_STATE": RegistrationState.INTERNAL_ERROR,
    "WRONG_CREDENTIALS_STATE": RegistrationState.WRONG_CREDENTIALS,
    "REGISTRAR_ERROR_STATE": RegistrationState.REGISTRAR_ERROR,
    "NOT_FOUND": RegistrationState.NOT_FOUND,
    "UNREGISTERING_STATE": RegistrationState.UNREGISTERING,
    "AUTHENTICATING_UNREGISTER_STATE": RegistrationState.UNREGISTERING,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class RegistrationStatus:
    """One agent's SIP registration as reported by the API."""

    state: RegistrationState
    raw_state: str
    state_code: int | None
    is_registered: bool
    enabled: bool | None
    expires: datetime | None
    last_register_sent: datetime | None
    registration_interval: int | None
    error_message: str | None

    @classmethod
    def from_api(cls, data: Any) -> Self:
        """Build from the `data` object; raise TelzinoInvalidResponseError if unusable."""
        if not isinstance(data, Mapping):
            raise TelzinoInvalidResponseError("Registration status is not an object")
        raw_state = data.get("state")
        if not isinstance(raw_state, str) or not raw_state:
            raise TelzinoInvalidResponseError("Registration status has no state")
        is_registered = data.get("isRegistered")
        if not isinstance(is_registered, bool):
            raise TelzinoInvalidResponseError(
                "Registration status has no boolean isRegistered"
            )
        state_code = data.get("stateCode")
        message = data.get("errorMessage")
        return cls(
            state=RegistrationState.from_api(raw_state),
            raw_state=raw_state,
            state_code=state_code
            if isinstance(state_code, int) and not isinstance(state_code, bool)
            else None,
            is_registered=is_registered,
            enabled=_parse_enabled(data.get("enabled")),
            expires=_parse_unix_time(data.get("expires")),
            last_register_sent=_parse_time(data.get("lastRegisterSent")),
            # The API calls the requested binding lifetime "registrationTimeout".
            registration_interval=_parse_seconds(data.get("registrationTimeout")),
            error_message=message if isinstance(message, str) and message else None,
        )

    def shifted(self, seconds: float) -> Self:
        """Return the status with its times moved by `seconds`, onto another clock."""
        if not seconds:
            return self
        delta = timedelta(seconds=seconds)
        return replace(
            self,
            expires=None if self.expires is None else self.expires + delta,
            last_register_sent=None
            if self.last_register_sent is None
            else self.last_register_sent + delta,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Agent:
    """An agent the credentials can see."""

    id: str
    name: str
    organization_id: str | None = None
    status: str | None = None
    is_active: bool | None = None

    @classmethod
    def from_api(cls, data: Any) -> Self:
        """Build from an agent object; raise TelzinoInvalidResponseError if unusable."""
        if not isinstance(data, Mapping):
            raise TelzinoInvalidResponseError("Agent is not an object")
        agent_id = data.get("id")
        if not isinstance(agent_id, str) or not agent_id:
            raise TelzinoInvalidResponseError("Agent has no id")
        name = data.get("name")
        organization_id = data.get("organization_id")
        status = data.get("status")
        is_active = data.get("is_active")
        return cls(
            id=agent_id,
            # An unnamed agent is still worth watching; its ID names it.
            name=name.strip() if isinstance(name, str) and name.strip() else agent_id,
            organization_id=organization_id
            if isinstance(organization_id, str)
            else None,
            status=status if isinstance(status, str) else None,
            is_active=is_active if isinstance(is_active, bool) else None,
        )


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A pasted access token; it cannot be renewed by the client."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """OAuth client credentials; the client fetches and renews tokens with them."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)


type Credentials = AccessToken | ClientCredentials


def _parse_enabled(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"yes": True, "no": False}.get(value.strip().lower())
    return None


def _parse_unix_time(value: Any) -> datetime | None:
    """Parse a positive Unix timestamp as UTC; 0, absent or junk give None, never 1970."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except OverflowError, OSError, ValueError:
        return None


def _parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 time (any offset; none is UTC) or a Unix time; junk is None."""
    if isinstance(value, str) and not (value := value.strip()):
        return None
    if not isinstance(value, str) or _looks_numeric(value):
        if (
            isinstance(value, (int, float, str))
            and not isinstance(value, bool)
            and abs(float(value)) > _MILLISECONDS_ABOVE
        ):
            # Milliseconds, as JavaScript gives them.
            value = float(value) / 1000
        return _parse_unix_time(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed if parsed.year > 1970 else None


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _parse_seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return int(value)
