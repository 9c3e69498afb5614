"""Async client for the Telzino REST API.

This module knows nothing about Home Assistant: it takes an aiohttp session,
speaks the API described in the Telzino documentation and raises its own
exceptions, all derived from `TelzinoError`. Messages never carry a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
import ipaddress
import json
import math
import time
from typing import Any, Final, Self
from urllib.parse import urlsplit
import uuid

import aiohttp

DEFAULT_API_URL: Final = "https://api.telzino.com"
TOKEN_AUDIENCE: Final = "https://api.telzino.com/"  # noqa: S105  # not a secret
DEFAULT_REQUEST_TIMEOUT: Final = 15.0
# Ten requests in flight keep 100 agents under a second at 100 ms latency while
# staying polite to an API whose rate limits are not published.
DEFAULT_MAX_CONCURRENCY: Final = 10
AGENTS_PAGE_LIMIT: Final = 100
# Renew a token this long before it expires, so that no request races expiry.
TOKEN_RENEW_MARGIN: Final = 300.0
# A status answer is a few hundred bytes and an agents page a few hundred kB;
# anything far larger is not an answer to trust or to hold in memory.
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_AGENTS_PAGE_BYTES: Final = 16 * 1024 * 1024
# Guards pagination against a server that never says it is done.
MAX_AGENT_PAGES: Final = 1000


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


class RegistrationState(StrEnum):
    """Registration state, keyed on the API's state name (never its code)."""

    NOT_REGISTERED = "not_registered"
    REGISTERING = "registering"
    AUTHENTICATING = "authenticating"
    REGISTERED = "registered"
    REGISTER_TIMEOUT = "register_timeout"
    INTERNAL_ERROR = "internal_error"
    WRONG_CREDENTIALS = "wrong_credentials"
    REGISTRAR_ERROR = "registrar_error"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"

    @classmethod
    def from_api(cls, name: str) -> RegistrationState:
        """Map an API state name; names this client does not know are UNKNOWN."""
        return _API_STATES.get(name, cls.UNKNOWN)


_API_STATES: Final[dict[str, RegistrationState]] = {
    "NOT_REGISTERED_STATE": RegistrationState.NOT_REGISTERED,
    "REGISTERING_STATE": RegistrationState.REGISTERING,
    "AUTHENTICATING_STATE": RegistrationState.AUTHENTICATING,
    "REGISTERED_STATE": RegistrationState.REGISTERED,
    "REGISTER_TIMEOUT_STATE": RegistrationState.REGISTER_TIMEOUT,
    "INTERNAL_ERROR_STATE": RegistrationState.INTERNAL_ERROR,
    "WRONG_CREDENTIALS_STATE": RegistrationState.WRONG_CREDENTIALS,
    "REGISTRAR_ERROR_STATE": RegistrationState.REGISTRAR_ERROR,
    "NOT_FOUND": RegistrationState.NOT_FOUND,
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
    registration_timeout: int | None
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
            last_register_sent=_parse_iso_time(data.get("lastRegisterSent")),
            registration_timeout=_parse_seconds(data.get("registrationTimeout")),
            error_message=message if isinstance(message, str) and message else None,
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


def validate_api_url(url: str) -> str:
    """Return the normalized base URL, or raise TelzinoInvalidUrlError.

    The token travels with every request, so only https is accepted, except on
    loopback hosts where a local test server has no certificate.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise TelzinoInvalidUrlError("API URL is not a valid URL") from err
    host = parts.hostname or ""
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise TelzinoInvalidUrlError("API URL must be scheme://host[:port][/path]")
    if parts.scheme == "http" and not _is_loopback(host):
        raise TelzinoInvalidUrlError("API URL must use https")
    if parts.scheme not in ("http", "https"):
        raise TelzinoInvalidUrlError("API URL must use https")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def validate_agent_id(agent_id: str) -> str:
    """Return the agent ID in canonical form, or raise TelzinoInvalidAgentIdError."""
    try:
        return str(uuid.UUID(agent_id.strip()))
    except (ValueError, AttributeError) as err:
        raise TelzinoInvalidAgentIdError(agent_id) from err


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None or not (value := value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except TypeError, ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class TelzinoClient:
    """Talks to the Telzino API with one set of credentials."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: Credentials,
        *,
        api_url: str = DEFAULT_API_URL,
        request_timeout: float | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Validate the URL now so that a bad one fails before any request."""
        if max_concurrency < 1:
            raise TelzinoInvalidInputError("max_concurrency must be at least 1")
        self._session = session
        self._credentials = credentials
        self._api_url = validate_api_url(api_url)
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout or DEFAULT_REQUEST_TIMEOUT
        )
        self._max_concurrency = max_concurrency
        # Looked up now, not at import, so that a frozen test clock applies.
        self._clock = clock or time.monotonic
        self._token: str | None = (
            credentials.token if isinstance(credentials, AccessToken) else None
        )
        self._token_renew_at = math.inf
        self._token_lock = asyncio.Lock()

    @property
    def api_url(self) -> str:
        """The normalized API base URL."""
        return self._api_url

    @property
    def max_concurrency(self) -> int:
        """How many status requests one batch keeps in flight at most."""
        return self._max_concurrency

    async def authenticate(self) -> None:
        """Make sure a token is at hand; with client credentials this checks them."""
        await self._get_token()

    async def get_agents(self) -> list[Agent]:
        """Return every agent the credentials can see, following all pages."""
        agents: list[Agent] = []
        page = 1
        while True:
            body = await self._request_json(
                f"/v1/agents?page={page}&limit={AGENTS_PAGE_LIMIT}",
                max_body=MAX_AGENTS_PAGE_BYTES,
            )
            items = body.get("data")
            if not isinstance(items, list):
                raise TelzinoInvalidResponseError("Agent list has no data array")
            agents.extend(Agent.from_api(item) for item in items)
            if not items or not _has_next_page(body.get("pagination"), page, items):
                return agents
            if page >= MAX_AGENT_PAGES:
                raise TelzinoInvalidResponseError("Agent list does not end")
            page += 1

    async def get_agent(self, agent_id: str) -> Agent:
        """Return one agent."""
        agent_id = validate_agent_id(agent_id)
        body = await self._request_json(f"/v1/agents/{agent_id}")
        return Agent.from_api(body.get("data"))

    async def get_registration_status(self, agent_id: str) -> RegistrationStatus:
        """Return one agent's SIP registration status."""
        agent_id = validate_agent_id(agent_id)
        body = await self._request_json(
            f"/v1/agents/{agent_id}/sip/registration/status"
        )
        if body.get("success") is False:
            raise TelzinoInvalidResponseError("API reported the status as failed")
        return RegistrationStatus.from_api(body.get("data"))

    async def get_registration_statuses(
        self, agent_ids: Iterable[str]
    ) -> dict[str, RegistrationStatus | TelzinoError]:
        """Return each agent's status or that agent's error, fetched concurrently.

        One agent's failure never fails the others. Once the API rate limits us
        or rejects the credentials, the requests not yet sent are not sent: they
        get the same error instead of adding load to an API that said stop.
        """
        ids = list(dict.fromkeys(agent_ids))
        semaphore = asyncio.Semaphore(self._max_concurrency)
        stop: list[TelzinoError] = []

        async def fetch(agent_id: str) -> RegistrationStatus | TelzinoError:
            async with semaphore:
                if stop:
                    return stop[0]
                try:
                    return await self.get_registration_status(agent_id)
                except (TelzinoRateLimitedError, TelzinoAuthenticationError) as err:
                    stop.append(err)
                    return err
                except TelzinoError as err:
                    return err

        results = await asyncio.gather(*(fetch(agent_id) for agent_id in ids))
        return dict(zip(ids, results, strict=True))

    async def _request_json(
        self, path: str, *, max_body: int = MAX_BODY_BYTES
    ) -> dict[str, Any]:
        """GET an API path with a bearer token; renew the token once on a 401."""
        token = await self._get_token()
        try:
            return await self._send(
                "GET", path, max_body=max_body, headers=_bearer(token)
            )
        except TelzinoAuthenticationError:
            if isinstance(self._credentials, AccessToken):
                raise
        # The token was revoked or expired early: renew once and retry once.
        token = await self._get_token(stale=token)
        return await self._send("GET", path, max_body=max_body, headers=_bearer(token))

    async def _get_token(self, stale: str | None = None) -> str:
        """Return a valid token; concurrent callers share one token request."""
        if isinstance(self._credentials, AccessToken):
            return self._credentials.token
        if self._token_usable(stale):
            return self._token  # type: ignore[return-value]
        async with self._token_lock:
            # Another caller may have renewed it while this one waited.
            if self._token_usable(stale):
                return self._token  # type: ignore[return-value]
            self._token = None
            token, lifetime = await self._fetch_token(self._credentials)
            self._token = token
            self._token_renew_at = self._clock() + max(
                lifetime - min(TOKEN_RENEW_MARGIN, lifetime / 10), 0.0
            )
            return token

    def _token_usable(self, stale: str | None) -> bool:
        return (
            self._token is not None
            and self._token != stale
            and self._clock() < self._token_renew_at
        )

    async def _fetch_token(self, credentials: ClientCredentials) -> tuple[str, float]:
        try:
            body = await self._send(
                "POST",
                "/oauth/token",
                max_body=MAX_BODY_BYTES,
                json_body={
                    "client_id": credentials.client_id,
                    "client_secret": credentials.client_secret,
                    "audience": TOKEN_AUDIENCE,
                    "grant_type": "client_credentials",
                },
            )
        except (TelzinoForbiddenError, TelzinoRequestError) as err:
            # The token endpoint answers bad credentials with 400, 401 or 403.
            raise TelzinoAuthenticationError(
                "Client credentials were rejected"
            ) from err
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TelzinoInvalidResponseError("Token response has no access_token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)):
            lifetime = 3600.0
        return token, float(lifetime)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        max_body: int,
        headers: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its JSON object; map every failure."""
        what = f"{method} {path.partition('?')[0]}"
        try:
            async with self._session.request(
                method,
                f"{self._api_url}{path}",
                headers={"Accept": "application/json", **(headers or {})},
                json=json_body,
                timeout=self._timeout,
                # A redirect could carry the bearer token to another host.
                allow_redirects=False,
            ) as response:
                _raise_for_status(response, what)
                raw = await _read_limited(response, max_body, what)
        except TimeoutError as err:
            raise TelzinoConnectionError(f"{what}: timed out") from err
        except aiohttp.ClientError as err:
            raise TelzinoConnectionError(
                f"{what}: connection failed ({type(err).__name__})"
            ) from err
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise TelzinoInvalidResponseError(f"{what}: response is not JSON") from err
        if not isinstance(body, dict):
            raise TelzinoInvalidResponseError(f"{what}: response is not a JSON object")
        return body


def _raise_for_status(response: aiohttp.ClientResponse, what: str) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    message = f"{what}: HTTP {status}"
    if status == 401:
        raise TelzinoAuthenticationError(message)
    if status == 403:
        raise TelzinoForbiddenError(message)
    if status == 404:
        raise TelzinoNotFoundError(message)
    if status == 429:
        raise TelzinoRateLimitedError(
            message, parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500:
        raise TelzinoConnectionError(message)
    raise TelzinoRequestError(message)


async def _read_limited(
    response: aiohttp.ClientResponse, max_body: int, what: str
) -> bytes:
    if (response.content_length or 0) > max_body:
        raise TelzinoInvalidResponseError(f"{what}: response is too large")
    raw = await response.content.read(max_body + 1)
    while len(raw) <= max_body and (chunk := await response.content.read(max_body)):
        raw += chunk
    if len(raw) > max_body:
        raise TelzinoInvalidResponseError(f"{what}: response is too large")
    return raw


def _has_next_page(pagination: Any, page: int, items: list[Any]) -> bool:
    if isinstance(pagination, Mapping):
        has_next = pagination.get("hasNext")
        if isinstance(has_next, bool):
            return has_next
        total_pages = pagination.get("totalPages")
        if isinstance(total_pages, int) and not isinstance(total_pages, bool):
            return page < total_pages
    return len(items) >= AGENTS_PAGE_LIMIT


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _parse_iso_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed if parsed.year > 1970 else None


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
