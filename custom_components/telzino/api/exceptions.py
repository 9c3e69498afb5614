"""Exceptions of the Telzino client; messages never carry a secret."""


class TelzinoError(Exception):
    """Base class of every error raised by this client."""


class TelzinoInvalidInputError(TelzinoError, ValueError):
    """Input rejected before any request was made."""


class TelzinoInvalidUrlError(TelzinoInvalidInputError):
    """The API base URL is not an https URL (or http on a loopback host)."""


class TelzinoInvalidAgentIdError(TelzinoInvalidInputError):
    """An agent ID is not a UUID."""

    def __init__(self, agent_id: str) -> None:
        """Keep the rejected ID for the caller."""
        super().__init__(f"Agent ID is not a UUID: {agent_id!r}")
        self.agent_id = agent_id


class TelzinoAuthenticationError(TelzinoError):
    """The access token or the client credentials were rejected."""


class TelzinoForbiddenError(TelzinoError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""


class TelzinoNotFoundError(TelzinoError):
    """The requested resource, usually an agent, does not exist (HTTP 404)."""


class TelzinoRateLimitedError(TelzinoError):
    """The API asked to slow down (HTTP 429)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        """Keep the server's Retry-After in seconds; None when it sent none."""
        super().__init__(message)
        self.retry_after = retry_after


class TelzinoConnectionError(TelzinoError):
    """The API could not be reached or failed on its side (timeout, 5xx)."""


class TelzinoInvalidResponseError(TelzinoError):
    """The API answered with something this client cannot read."""


class TelzinoRequestError(TelzinoError):
    """The API refused the request for another reason (400 and other 4xx)."""
