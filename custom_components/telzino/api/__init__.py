"""Asynchronous client for the Telzino REST API.

Shaped like a library of its own (client, models, exceptions; no Home
Assistant imports), so that it can move to its own package unchanged.
"""

from .budget import RequestBudget, parse_retry_after
from .client import (
    DEFAULT_API_URL,
    DEFAULT_MAX_CONCURRENCY,
    TOKEN_AUDIENCE,
    TelzinoClient,
    validate_agent_id,
    validate_api_url,
)
from .exceptions import (
    TelzinoAuthenticationError,
    TelzinoConnectionError,
    TelzinoError,
    TelzinoForbiddenError,
    TelzinoInvalidAgentIdError,
    TelzinoInvalidInputError,
    TelzinoInvalidResponseError,
    TelzinoInvalidUrlError,
    TelzinoNotFoundError,
    TelzinoRateLimitedError,
    TelzinoRequestError,
)
from .models import (
    API_STATE_NAMES,
    AccessToken,
    Agent,
    ClientCredentials,
    Credentials,
    RegistrationState,
    RegistrationStatus,
)
from .server_clock import ServerClock

__all__ = [
    "API_STATE_NAMES",
    "DEFAULT_API_URL",
    "DEFAULT_MAX_CONCURRENCY",
    "TOKEN_AUDIENCE",
    "AccessToken",
    "Agent",
    "ClientCredentials",
    "Credentials",
    "RegistrationState",
    "RegistrationStatus",
    "RequestBudget",
    "ServerClock",
    "TelzinoAuthenticationError",
    "TelzinoClient",
    "TelzinoConnectionError",
    "TelzinoError",
    "TelzinoForbiddenError",
    "TelzinoInvalidAgentIdError",
    "TelzinoInvalidInputError",
    "TelzinoInvalidResponseError",
    "TelzinoInvalidUrlError",
    "TelzinoNotFoundError",
    "TelzinoRateLimitedError",
    "TelzinoRequestError",
    "parse_retry_after",
    "validate_agent_id",
    "validate_api_url",
]
